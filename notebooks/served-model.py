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
# # Inside the served model
#
# **What you learn:** how a program talks to `lenet serve`'s REST API, and what the draw-a-digit
# page draws: you start the server from the notebook, send it a digit at `POST /predict` (the
# answer) and `POST /explain` (the answer plus every layer's activations, the first layer's kernels
# and a saliency map from the same forward pass), draw those from the JSON, and stop the server.
#
# **How long:** about 10 seconds. It needs the serving extras (`pip install -e ".[serve]"`) and
# `httpx`.

# %%
try:
    import lenetlab
except ImportError:  # a fresh kernel without lenetlab (a hosted notebook): install it from this clone
    # %pip install -q -e "..[serve]" httpx
    import lenetlab  # noqa: F401

# %%
# %matplotlib inline
import atexit
import io
import socket
import subprocess
import sys
import time

import httpx
import matplotlib.pyplot as plt
import numpy as np
from PIL import Image

from lenetlab.data import load

# %% [markdown]
# ## Start the server
#
# On a free port of this machine only; it serves the `lenet5` shipped with lenetlab (99.3% on
# MNIST's test set). Give it run directories or checkpoints to serve your own models.

# %%
with socket.socket() as s:
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
server = subprocess.Popen(
    [sys.executable, "-m", "lenetlab.cli", "serve", "--port", str(port), "--log-level", "warning"],
    stdout=subprocess.DEVNULL,
    stderr=subprocess.DEVNULL,
)
atexit.register(server.terminate)  # stopped with the kernel even if a cell below fails
url = f"http://127.0.0.1:{port}"
for _ in range(300):  # up to a minute: the first start imports torch and FastAPI
    try:
        health = httpx.get(f"{url}/health", timeout=1).json()
        break
    except httpx.HTTPError:
        assert server.poll() is None, f"lenet serve exited with status {server.returncode}"
        time.sleep(0.2)
print(url, health["model"], health["backend"])

# %% [markdown]
# ## Ask it about one digit
#
# A test digit from the embedded subset, sent as a PNG file the way a browser uploads one.

# %%
split = load("mnist-subset").test
digit, truth = split.x[3, 0].numpy(), int(split.y[3])
buffer = io.BytesIO()
Image.fromarray(digit).save(buffer, format="PNG")
files = {"file": ("digit.png", buffer.getvalue(), "image/png")}

predicted = httpx.post(f"{url}/predict", files=files, timeout=30).json()
print(f"/predict: {predicted['label']} ({predicted['confidence']:.1%}); true label {truth}")
print("top 3:", [(t["label"], round(t["probability"], 3)) for t in predicted["top_k"]])

explained = httpx.post(f"{url}/explain", files=files, timeout=30).json()
for layer in explained["layers"]:
    print(f"{layer['name']:7} {layer['type']:10} after {layer['activation']!s:5} {layer['kind']:6} {layer['shape']}")

# %% [markdown]
# ## Draw what every layer saw
#
# The input the model received, C1's kernels, the first maps of each convolutional and pooling
# layer, the fully connected layers as bars, and the saliency: how much each pixel moves the
# winning score.

# %%
maps = [layer for layer in explained["layers"] if layer["kind"] == "maps" and layer["shape"][1] > 1]
vectors = [layer for layer in explained["layers"] if layer["kind"] == "vector"]
fig, axes = plt.subplots(len(maps) + 1, 6, figsize=(9, 1.6 * (len(maps) + 1)))
axes[0, 0].imshow(np.array(predicted["input_28x28"]), cmap="gray")
axes[0, 0].set_title("input", fontsize=8)
axes[0, 1].imshow(np.array(explained["saliency"]), cmap="hot")
axes[0, 1].set_title("saliency", fontsize=8)
kernels = np.array(explained["kernels"]["values"])  # [6, 1, 5, 5]
for k, ax in enumerate(axes[0, 2:]):
    ax.imshow(kernels[k, 0], cmap="bwr")
    ax.set_title(f"C1 kernel {k}", fontsize=8)
for row, layer in zip(axes[1:], maps):
    values = np.array(layer["values"])
    for k, ax in enumerate(row):
        ax.imshow(values[k], cmap="viridis")
        ax.set_title(f"{layer['name']} map {k}", fontsize=8)
for ax in axes.flat:
    ax.axis("off")
plt.show()

fig, axes = plt.subplots(1, len(vectors), figsize=(3 * len(vectors), 2.2))
for ax, layer in zip(np.atleast_1d(axes), vectors):
    ax.bar(range(len(layer["values"])), layer["values"])
    ax.set_title(f"{layer['name']} ({layer['shape'][0]} values)", fontsize=9)
plt.show()

# %% [markdown]
# ## Stop the server

# %%
server.terminate()
status = server.wait(timeout=20)
print("lenet serve stopped, exit status", status)

# %% [markdown]
# ## What this notebook showed, checked

# %%
saliency = np.array(explained["saliency"])
assert predicted["label"] == str(truth) and explained["label"] == predicted["label"]
assert abs(sum(predicted["probabilities"]) - 1) < 1e-6
assert [layer["name"] for layer in maps] == ["C1", "S2", "C3", "S4"]
assert np.array(maps[0]["values"]).shape == (6, 28, 28) and kernels.shape == (6, 1, 5, 5)
assert saliency.shape == (28, 28) and saliency.max() == 1.0
assert server.poll() is not None
print("all checks passed")
