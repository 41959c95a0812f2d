# ---
# jupyter:
#   jupytext:
#     text_representation:
#       extension: .py
#       format_name: percent
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # A tour of lenetlab: train LeNet-5 and look inside it
#
# **What you learn:** how to train LeNet-5 from Python with a `RunConfig` and a `Runner`, read its
# loss and accuracy curves, its confusion matrix and its worst mistakes, look at the first layer's
# kernels and at what *every* layer makes of one digit, read a digit from an image file, and export
# the model to ONNX.
#
# **How long:** about 15 seconds on a laptop CPU. Everything runs on the 1,000-image MNIST subset
# shipped inside lenetlab, so no download is needed.

# %%
try:
    import lenetlab
except ImportError:  # a fresh kernel without lenetlab (a hosted notebook): install it from this clone
    # %pip install -q -e ..
    import lenetlab  # noqa: F401

# %%
# %matplotlib inline
import tempfile
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import torch
from IPython.display import Image, display
from PIL import Image as PILImage

from lenetlab import plots
from lenetlab.apps.predict import predict_images
from lenetlab.inference.predictor import TorchPredictor
from lenetlab.serve.explain import Explainer
from lenetlab.serve.export import export_onnx
from lenetlab.train.config import RunConfig
from lenetlab.train.runner import Runner

work = Path(tempfile.mkdtemp(prefix="lenetlab-tour-"))

# %% [markdown]
# ## Train
#
# A `RunConfig` holds every choice of a run (the same fields as `lenet train --help`). Three epochs
# on the subset, one CPU thread: enough for LeNet-5 to get most test digits right.

# %%
cfg = RunConfig(
    model="lenet5",
    dataset="mnist-subset",
    epochs=3,
    batch_size=32,
    lr=5e-3,
    seed=0,
    num_threads=1,
    out_dir=str(work),
    name="tour",
    progress="none",
    tensorboard=False,
)
runner = Runner(cfg)
result = runner.run()
print(f"best dev accuracy {result.dev_accuracy:.3f}, test accuracy {result.test.accuracy:.3f}")
print("run directory:", result.run_dir.name, sorted(p.name for p in result.run_dir.iterdir()))

# %% [markdown]
# ## The curves
#
# Every metrics row the run wrote (also in `metrics.jsonl` and `metrics.csv`) is in `runner.history`.

# %%
for row in runner.history:
    if row["kind"] in ("epoch", "dev"):
        print(f"{row['kind']:6} epoch {row['epoch']:.0f}  loss {row['loss']:.3f}  accuracy {row['accuracy']:.3f}")
display(Image(plots.plot_loss_curves(runner.history, work / "loss.png")))
display(Image(plots.plot_accuracy_curve(runner.history, work / "accuracy.png")))

# %% [markdown]
# ## Confusion matrix and worst mistakes
#
# The test evaluation kept the predictions. The *worst* mistakes are those the model was most
# sure about.

# %%
test = runner.splits.test
display(Image(plots.plot_confusion(result.test.confusion, result.test.class_names, work / "confusion.png")))

predictor = TorchPredictor(result.best_path)
probs = predictor.predict_proba(test.x)  # [200, 10]
pred = probs.argmax(1)
wrong = np.flatnonzero(pred != test.y.numpy())
worst = wrong[np.argsort(-probs[wrong].max(1))][:8]
fig, axes = plt.subplots(1, len(worst), figsize=(1.6 * len(worst), 2))
for ax, i in zip(np.atleast_1d(axes), worst):
    ax.imshow(test.x[i, 0], cmap="gray")
    ax.set_title(f"true {int(test.y[i])}\nsaid {pred[i]} ({probs[i].max():.0%})", fontsize=8)
    ax.axis("off")
plt.show()

# %% [markdown]
# ## Kernels and every layer's feature maps
#
# C1's six 5×5 kernels, then what each layer outputs for one test digit (the same activations the
# served model's `/explain` returns).

# %%
display(Image(plots.plot_kernels(predictor.model, torch.zeros(1, 1, 32, 32), work / "kernels.png")))

explained = Explainer(predictor).explain(test.x[0])
maps = [layer for layer in explained["layers"] if layer["kind"] == "maps" and layer["shape"][1] > 1]
fig, axes = plt.subplots(len(maps), 6, figsize=(9, 1.6 * len(maps)))
for row, layer in zip(axes, maps):
    values = np.array(layer["values"])  # [C, H, W]
    for k, ax in enumerate(row):
        ax.imshow(values[k], cmap="viridis")
        ax.set_title(f"{layer['name']} map {k}", fontsize=7)
        ax.axis("off")
plt.show()
for layer in explained["layers"]:
    print(f"{layer['name']:8} {layer['type']:10} {layer['kind']:6} {layer['shape']}")

# %% [markdown]
# ## A digit from an image file
#
# Write one test digit as a PNG, then read it back the way `lenet predict` reads a photo.

# %%
png = work / "digit.png"
PILImage.fromarray(test.x[1, 0].numpy()).save(png)
answer = predict_images(predictor, [png])[0]
print(f"{png.name}: {answer.label} ({answer.probability:.0%}); the true label is {int(test.y[1])}")

# %% [markdown]
# ## Export to ONNX
#
# The exported graph is checked against PyTorch on random inputs.

# %%
exported = export_onnx(result.best_path, work / "lenet5.onnx")
print(
    f"{Path(exported['path']).name}: {exported['bytes']:,} bytes, max |onnx - torch| = {exported['max_abs_diff']:.1e}"
)

# %% [markdown]
# ## What this tour showed, checked

# %%
assert result.test.accuracy >= 0.8, result.test.accuracy
assert sum(sum(r) for r in result.test.confusion) == len(test) == 200
assert [layer["name"] for layer in maps] == ["C1", "S2", "C3", "S4"]
assert np.array(maps[0]["values"]).shape == (6, 28, 28)
assert exported["max_abs_diff"] < 1e-4
print("all checks passed")
