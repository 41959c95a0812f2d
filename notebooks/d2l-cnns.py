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
# # The CNN chapter of *Dive into Deep Learning*, on a laptop
#
# **What you learn:** how the networks of d2l's "Modern CNNs" chapter grew from LeNet — LeNet with
# sigmoid against ReLU, then AlexNet, VGG, NiN, GoogLeNet, batch normalisation and ResNet — by
# their output shapes, parameters and FLOPs layer by layer, and by one short training run each.
# The book's networks take 224×224 images; lenetlab's `-small` variants keep each design at a size
# that trains on 28×28 digits on a CPU (`lenet models` lists both).
#
# **How long:** about 20 seconds on a laptop CPU: one epoch per network on the 1,000-image subset —
# enough to compare their cost, far too little to rank their accuracy (the book trains for 10 epochs
# on 60,000 images).

# %%
try:
    import lenetlab
except ImportError:  # a fresh kernel without lenetlab (a hosted notebook): install it from this clone
    # %pip install -q -e ..
    import lenetlab  # noqa: F401

# %%
# %matplotlib inline
import tempfile

import matplotlib.pyplot as plt

from lenetlab.models.profile import format_profile, profile_model
from lenetlab.train.config import RunConfig
from lenetlab.train.runner import Runner

work = tempfile.mkdtemp(prefix="lenetlab-d2l-")


def train(model: str, epochs: int = 1, **model_kwargs):
    """Train ``model`` on the subset; return its RunResult."""
    cfg = RunConfig(
        model=model,
        model_kwargs=model_kwargs,
        epochs=epochs,
        batch_size=32,
        lr=2e-3,
        seed=0,
        num_threads=1,
        out_dir=work,
        progress="none",
        tensorboard=False,
        plots=False,
    )
    return Runner(cfg).run()


# %% [markdown]
# ## LeNet: sigmoid or ReLU
#
# d2l's LeNet (`lenet-d2l`) uses sigmoids and average pooling, as in 1998. Swap in ReLU and max
# pooling (the book's exercise): same parameters, but the gradients no longer vanish through the
# flat ends of the sigmoid, and in three epochs the difference is plain.

# %%
lenet = {
    activation: train("lenet-d2l", epochs=3, activation=activation, pool=pool)
    for activation, pool in (("sigmoid", "avg"), ("relu", "max"))
}
for activation, result in lenet.items():
    print(f"lenet-d2l {activation:8} test accuracy {result.test.accuracy:.3f}")

# %% [markdown]
# ## Shapes, parameters and FLOPs per layer
#
# One network in full, then the totals of every one.

# %%
print(format_profile(profile_model("nin-small")))

# %%
models = ["lenet-d2l", "alexnet-small", "vgg11-small", "nin-small", "googlenet-small", "lenet5-bn", "resnet18-small"]
profiles = {name: profile_model(name) for name in models}
print(f"{'model':16} {'input':>8} {'parameters':>11} {'MFLOPs':>8} {'layers':>6}")
for name, p in profiles.items():
    print(
        f"{name:16} {'x'.join(map(str, p.input_size)):>8} {p.trainable_params:11,} {p.flops / 1e6:8.1f} {len(p.rows):6}"
    )

# %% [markdown]
# ## One epoch each
#
# The same recipe for every network (Adam, learning rate 0.002, batch 32).

# %%
runs = {"lenet-d2l": lenet["sigmoid"]} | {name: train(name) for name in models[1:]}
for name, result in runs.items():
    print(f"{name:16} test accuracy {result.test.accuracy:.3f}   training {result.train_time:5.1f} s")

# %% [markdown]
# ## Cost against accuracy

# %%
fig, ax = plt.subplots(figsize=(7, 4))
for name, result in runs.items():
    ax.scatter(profiles[name].flops / 1e6, result.test.accuracy)
    ax.annotate(name, (profiles[name].flops / 1e6, result.test.accuracy), fontsize=8)
ax.set_xscale("log")
ax.set_xlabel("MFLOPs per image (log scale)")
ax.set_ylabel("test accuracy after one epoch on 1,000 images")
ax.set_title("d2l's CNNs at their -small sizes")
plt.show()

# %% [markdown]
# ## What this notebook showed, checked

# %%
expected = {
    "lenet-d2l": 61_706,
    "alexnet-small": 428_682,
    "vgg11-small": 910_666,
    "nin-small": 145_414,
    "googlenet-small": 376_566,
    "lenet5-bn": 44_878,
    "resnet18-small": 701_930,
}
counts = {name: p.total_params for name, p in profiles.items()}
assert counts == expected, counts
accuracy = {activation: result.test.accuracy for activation, result in lenet.items()}
assert accuracy["relu"] > accuracy["sigmoid"] + 0.2, accuracy
assert profiles["resnet18-small"].flops > profiles["lenet-d2l"].flops * 50
print("all checks passed")
