"""Serving: the draw-a-digit web page, the REST API and ONNX export.

- :mod:`lenetlab.serve.app`: ``create_app(predictor)`` (FastAPI) and ``run_server(...)`` (uvicorn),
  serving any :class:`lenetlab.inference.predictor.Predictor` (a checkpoint or an ONNX model);
- :mod:`lenetlab.serve.export`: ``export_onnx(checkpoint, out)``, an ONNX file with a dynamic batch
  axis and the model's input spec and class names in its metadata.

This package never imports :mod:`lenetlab.train` (an import-linter contract checks it).
"""
