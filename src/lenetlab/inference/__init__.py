"""Running trained models: the one evaluation function (:mod:`.evaluate`) and the one predictor for
PyTorch checkpoints and ONNX models (:mod:`.predictor`). It sits below training, plots and
serving, which all use it, and above the models and data it runs."""
