"""Serving: the draw-a-digit web page, the REST API and ONNX export.

- :mod:`lenetlab.serve.app`: ``create_app(models)`` (FastAPI) and ``run_server(...)`` (uvicorn),
  serving one or several :class:`lenetlab.inference.predictor.Predictor` (checkpoints or ONNX models);
- :mod:`lenetlab.serve.explain`: every layer's activations, the first kernels and the saliency map
  of a torch model from one forward pass (``POST /explain`` and the page's layer view);
- :mod:`lenetlab.serve.apidocs`: ``GET /docs``, the API reference rendered from the OpenAPI schema;
- :mod:`lenetlab.serve.export`: ``export_onnx(checkpoint, out)``, an ONNX file with a dynamic batch
  axis and the model's input spec and class names in its metadata.

This package never imports :mod:`lenetlab.train` (an import-linter contract checks it).
"""
