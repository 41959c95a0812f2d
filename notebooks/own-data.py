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
# # Your own data: a folder of images, a recipe, a submission
#
# **What you learn:** how to train on images of your own with no choices made by hand. We make a
# small Kaggle-style folder in the notebook (`train.csv` naming labelled images, `test.csv` naming
# unlabelled ones, an `images/` folder of PNG files, dark ink on a light background, 40×40 pixels,
# four classes with word labels), let lenetlab's **automatic recipe** look at it and choose the
# model, input size, optimiser, schedule, augmentation and validation split, train, write the
# submission file Kaggle expects, and look at what the model gets wrong.
#
# **How long:** about 15 seconds on a laptop CPU (a few epochs; the recipe alone would choose more).

# %%
try:
    import lenetlab
except ImportError:  # a fresh kernel without lenetlab (a hosted notebook): install it from this clone
    # %pip install -q -e ..
    import lenetlab  # noqa: F401

# %%
# %matplotlib inline
import csv
import tempfile
from pathlib import Path

import matplotlib.pyplot as plt
from PIL import Image

from lenetlab.apps.submit import kaggle_submit
from lenetlab.data import load

work = Path(tempfile.mkdtemp(prefix="lenetlab-own-"))

# %% [markdown]
# ## Make the folder
#
# Digits 1, 4, 7 and 9 (easily confused) from the embedded subset stand in for your photos: inverted (dark on light),
# enlarged to 40×40, saved as PNG and labelled with words.

# %%
names = {1: "one", 4: "four", 7: "seven", 9: "nine"}
subset = load("mnist-subset")
folder = work / "my-digits"
(folder / "images").mkdir(parents=True)


def write_images(split, prefix: str) -> list[tuple[str, str]]:
    rows = []
    for i, (x, y) in enumerate(zip(split.x, split.y)):
        if int(y) in names:
            name = f"images/{prefix}{i}.png"  # relative to the folder, as train.csv names it
            Image.fromarray(255 - x[0].numpy()).resize((40, 40), Image.BILINEAR).save(folder / name)
            rows.append((name, names[int(y)]))
    return rows


train_rows, test_rows = write_images(subset.train, "train"), write_images(subset.test, "test")
with open(folder / "train.csv", "w", newline="") as f:
    csv.writer(f).writerows([("image", "label"), *train_rows])
with open(folder / "test.csv", "w", newline="") as f:
    csv.writer(f).writerows([("image",), *((name,) for name, _ in test_rows)])
print(f"{len(train_rows)} labelled images, {len(test_rows)} test images in {folder.name}/")
fig, axes = plt.subplots(1, 6, figsize=(7, 1.5))
for ax, (name, label) in zip(axes, train_rows):
    ax.imshow(Image.open(folder / name), cmap="gray")
    ax.set_title(label, fontsize=9)
    ax.axis("off")
plt.show()

# %% [markdown]
# ## The recipe, training and the submission
#
# `kaggle_submit` is `lenet submit --data-dir my-digits` from Python. The recipe's block is printed
# first: each line is one choice and why it was made from the data. We keep every choice but the
# number of epochs (and train one model instead of the recipe's ensemble), to stay quick.

# %%
submitted = kaggle_submit(
    folder,
    out=work / "submission.csv",
    epochs=3,
    ensemble=1,
    seed=0,
    num_threads=1,
    out_dir=str(work / "runs"),
    progress="none",
    tensorboard=False,
    plots=False,
    say=lambda text, err=False: print(text),
)

# %%
print((work / "submission.csv").read_text().splitlines()[:4])

# %% [markdown]
# ## What the model gets wrong
#
# We know the test labels (we made the folder), so we can score the submission and show its mistakes.

# %%
with open(work / "submission.csv", newline="") as f:
    answers = {row["image"]: row["label"] for row in csv.DictReader(f)}
truth = dict(test_rows)
wrong = [name for name in truth if answers[name] != truth[name]]
accuracy = 1 - len(wrong) / len(truth)
print(f"test accuracy {accuracy:.1%}: {len(wrong)} of {len(truth)} wrong")
print(f"(the recipe's validation split said {submitted.dev_accuracy:.1%})")
if wrong:
    fig, axes = plt.subplots(1, len(wrong[:8]), figsize=(1.5 * len(wrong[:8]), 1.8), squeeze=False)
    for ax, name in zip(axes[0], wrong):
        ax.imshow(Image.open(folder / name), cmap="gray")
        ax.set_title(f"{truth[name]}\nsaid {answers[name]}", fontsize=8)
        ax.axis("off")
    plt.show()

# %% [markdown]
# ## What this notebook showed, checked

# %%
assert submitted.rows == len(test_rows) and submitted.header == ["image", "label"]
assert set(answers.values()) <= set(names.values())
choices = submitted.recipe["choices"]
assert choices["model"]["value"] == "lenet5-modern" and choices["image_size"]["value"] == 32
assert choices["epochs"]["given"] and not choices["augment"].get("given")
assert accuracy >= 0.8, accuracy
print("all checks passed")
