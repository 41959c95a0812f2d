"""Serving: the draw-a-digit web page, the REST API, ONNX export and the onnxruntime predictor.

- :mod:`lenetlab.serve.app`: ``create_app(predictor)`` (FastAPI) and ``run_server(...)`` (uvicorn);
- :mod:`lenetlab.serve.predictor`: :class:`TorchPredictor` (a lenetlab checkpoint) and
  :class:`OnnxPredictor` (an exported ``.onnx``) with one interface;
- :mod:`lenetlab.serve.export`: ``export_onnx(checkpoint, out)``.

This package never imports :mod:`lenetlab.train`, and imports nothing eagerly, so that
``lenet serve --onnx MODEL.onnx`` does not load the model-building code at all.
"""
