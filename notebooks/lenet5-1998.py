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
# # LeNet-5 as in 1998
#
# **What you learn:** what made LeCun, Bottou, Bengio and Haffner's 1998 LeNet-5 different from the
# "LeNet-5" of most tutorials — the C3 connection table (table I of the paper), the RBF output layer
# whose centres are hand-drawn 7×12 digit bitmaps, trainable subsampling — and how its parameter and
# connection counts (60,000 and 340,908 in the paper) come about. Then a short training run of
# `lenet5-1998`, and the paper's error rates beside lenetlab's own full-MNIST results.
#
# **How long:** about 15 seconds on a laptop CPU (the embedded subset); set `DATA_DIR` to a folder
# holding the MNIST files to also train one pass on the full training set (a few minutes more).

# %%
try:
    import lenetlab
except ImportError:  # a fresh kernel without lenetlab (a hosted notebook): install it from this clone
    # %pip install -q -e ..
    import lenetlab  # noqa: F401

# %%
# %matplotlib inline
import json
import os
import tempfile
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np

from lenetlab.models.lenet1998 import C3_TABLE, digit_centres
from lenetlab.models.profile import profile_model
from lenetlab.train.config import RunConfig
from lenetlab.train.runner import Runner

work = Path(tempfile.mkdtemp(prefix="lenetlab-1998-"))

# %% [markdown]
# ## The C3 connection table
#
# Each of C3's 16 maps sees only some of S2's 6 maps: "to break the symmetry in the network", and to
# keep the number of connections down. Maps 0-5 see 3 neighbouring maps, 6-11 four neighbouring
# ones, 12-14 four non-neighbouring ones, and map 15 sees all six.

# %%
table = np.array(C3_TABLE)  # [6 S2 maps, 16 C3 maps]
plt.figure(figsize=(7, 3))
plt.imshow(table, cmap="Greys")
plt.xticks(range(16))
plt.yticks(range(6))
plt.xlabel("C3 map")
plt.ylabel("S2 map")
plt.title(f"table I: {table.sum()} connections of 5×5 kernels")
plt.show()

# %% [markdown]
# ## The RBF output bitmaps
#
# The output layer does not learn: unit *i* outputs the squared distance between F6's 84 values and
# a fixed ±1 bitmap of digit *i*, drawn on a 7×12 grid. The predicted digit is the nearest bitmap.

# %%
centres = digit_centres().numpy()  # [10, 84]
fig, axes = plt.subplots(1, 10, figsize=(10, 2))
for digit, ax in enumerate(axes):
    ax.imshow(centres[digit].reshape(12, 7), cmap="Greys", vmin=-1, vmax=1)
    ax.set_title(str(digit))
    ax.axis("off")
plt.show()

# %% [markdown]
# ## Parameters and connections, against the paper
#
# lenetlab's profiler counts each layer's trainable parameters and, in the "formula" column, the
# paper's connections (every multiply-add of the real connections, each bias, the subsampling's 4 inputs, the RBF).

# %%
profile = profile_model("lenet5-1998")
paper = {
    "C1": (156, 122_304),
    "S2": (12, 5_880),
    "C3": (1_516, 151_600),
    "S4": (32, 2_000),
    "C5": (48_120, 48_120),
    "F6": (10_164, 10_164),
}
print(f"{'layer':6} {'params':>8} {'paper':>8} {'connections':>12} {'paper':>8}")
for row in profile.rows:
    if row.name in paper:
        print(f"{row.name:6} {row.params:8,} {paper[row.name][0]:8,} {row.formula:12,} {paper[row.name][1]:8,}")
print(
    f"trainable parameters {profile.trainable_params:,} (paper: 60,000); "
    f"connections {profile.formula_total:,} (paper: 340,908)"
)

# %% [markdown]
# ## A short training run
#
# Two epochs of the 1998 network on the 1,000-image subset, with Adam (the paper used stochastic
# diagonal Levenberg-Marquardt: `--optimizer sdlm`, much slower per step).

# %%
cfg = RunConfig(
    model="lenet5-1998",
    epochs=2,
    batch_size=32,
    lr=2e-3,
    seed=0,
    num_threads=1,
    out_dir=str(work),
    name="lenet5-1998",
    progress="none",
    tensorboard=False,
    plots=False,
)
result = Runner(cfg).run()
print(f"subset: best dev accuracy {result.dev_accuracy:.3f}, test accuracy {result.test.accuracy:.3f}")

# %%
if os.environ.get("DATA_DIR"):
    full = Runner(cfg.replace(dataset="mnist", data_dir=os.environ["DATA_DIR"], epochs=1, name="full")).run()
    print(f"full MNIST, one pass: test error {100 * (1 - full.test.accuracy):.2f}%")
else:
    print("DATA_DIR is not set: the full-MNIST pass is skipped (set it to a folder with the MNIST files)")

# %% [markdown]
# ## The paper's error table beside lenetlab's
#
# The paper's test errors on MNIST (figure 9), then lenetlab's measured `lenet5-1998` runs on the
# full MNIST, read from the repository's `results/` files (each row names its command and machine).

# %%
paper_errors = {
    "LeNet-5, no distortions": 0.95,
    "LeNet-5, with distortions": 0.80,
    "LeNet-5, huge distortions": 0.70,
    "LeNet-4": 1.1,
    "LeNet-1": 1.7,
}
for name, error in paper_errors.items():
    print(f"paper     {error:5.2f}%  {name}")
results = Path.cwd().parent / "results"
measured = [
    row
    for f in sorted(results.glob("*.json"))
    for row in json.loads(f.read_text()).get("rows", [])
    if isinstance(row, dict)
    and row.get("model") == "lenet5-1998"
    and row.get("dataset") == "mnist"
    and "test_error_pct" in row
]
for row in measured:
    print(f"lenetlab  {row['test_error_pct']['mean']:5.2f}%  {row['label']}")

# %% [markdown]
# ## What this notebook showed, checked

# %%
assert profile.trainable_params == 60_000
assert profile.formula_total == 340_908
assert table.sum() == 60 and table[:, 15].sum() == 6
assert centres.shape == (10, 84) and set(np.unique(centres)) == {-1.0, 1.0}
assert all(row.params == paper[row.name][0] for row in profile.rows if row.name in paper)
assert result.test.accuracy > 0.5, result.test.accuracy
assert min(row["test_error_pct"]["mean"] for row in measured) < 1.0
print("all checks passed")
