"""Trained models read and run: a run directory (:mod:`.run`), the one evaluation function and loss
(:mod:`.evaluate`), the one predictor for checkpoints and ONNX models (:mod:`.predictor`) and committees
(:mod:`.committee`). Below training, plots and serving, which all use it; above models and data."""
