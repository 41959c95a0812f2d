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
# # Convolution and pooling from scratch
#
# **What you learn:** a convolution is a sliding dot product. You will run three implementations of
# the same convolution and pooling on the same weights — a loop written to be read
# (`lenetlab.ops.LoopConv2d`), an im2col version that turns the whole convolution into one matrix
# multiply (`lenetlab.ops.conv2d`), and PyTorch's own — and see that they agree to float32 rounding,
# that im2col's gradients are right (a numerical gradient check), and how much faster each is on
# this machine. Then a whole LeNet-5 built from the scratch operators, against PyTorch's.
#
# **How long:** about 10 seconds on a laptop CPU.

# %%
try:
    import lenetlab
except ImportError:  # a fresh kernel without lenetlab (a hosted notebook): install it from this clone
    # %pip install -q -e ..
    import lenetlab  # noqa: F401

# %%
# %matplotlib inline
import time

import matplotlib.pyplot as plt
import torch
import torch.nn.functional as F

from lenetlab import ops
from lenetlab.models import create
from lenetlab.models.lenet_scratch import torch_to_scratch

torch.manual_seed(0)
torch.set_num_threads(1)

# %% [markdown]
# ## One convolution, three ways
#
# A batch of 2 images with 3 channels, 4 kernels of 3×3, padding 1, stride 2. The loop layer keeps
# its bias as `[out_channels, 1]` (as the NNDL book writes it), so we copy the weights across.

# %%
x = torch.randn(2, 3, 12, 12)
weight, bias = torch.randn(4, 3, 3, 3), torch.randn(4)

loop = ops.LoopConv2d(3, 4, 3, stride=2, padding=1)
with torch.no_grad():
    loop.weight.copy_(weight)
    loop.bias.copy_(bias.view(-1, 1))

reference = F.conv2d(x, weight, bias, stride=2, padding=1)
outputs = {"loop": loop(x).detach(), "im2col": ops.conv2d(x, weight, bias, stride=2, padding=1)}
conv_diff = {name: float((out - reference).abs().max()) for name, out in outputs.items()}
for name, diff in conv_diff.items():
    print(f"conv2d {name:7} vs torch: shape {tuple(outputs[name].shape)}, max |difference| {diff:.1e}")

# %% [markdown]
# ## Pooling

# %%
pool_diff = {
    "max loop": ops.LoopPool2d(2, "max", stride=2)(x) - F.max_pool2d(x, 2),
    "max im2col": ops.max_pool2d(x, 2) - F.max_pool2d(x, 2),
    "avg loop": ops.LoopPool2d(2, "avg", stride=2)(x) - F.avg_pool2d(x, 2),
    "avg im2col": ops.avg_pool2d(x, 2) - F.avg_pool2d(x, 2),
}
pool_diff = {name: float(d.abs().max()) for name, d in pool_diff.items()}
for name, diff in pool_diff.items():
    print(f"pool {name:10} vs torch: max |difference| {diff:.1e}")

# %% [markdown]
# ## The gradient check
#
# `torch.autograd.gradcheck` compares the backward pass (written by hand for im2col) with finite
# differences, in float64.

# %%
x64 = torch.randn(1, 2, 6, 6, dtype=torch.float64, requires_grad=True)
w64 = torch.randn(3, 2, 3, 3, dtype=torch.float64, requires_grad=True)
b64 = torch.randn(3, dtype=torch.float64, requires_grad=True)
conv_ok = torch.autograd.gradcheck(lambda a, w, b: ops.conv2d(a, w, b, padding=1), (x64, w64, b64))
pool_ok = torch.autograd.gradcheck(lambda a: ops.max_pool2d(a, 2), (x64,))
print("conv2d gradients match finite differences:", conv_ok)
print("max_pool2d gradients match finite differences:", pool_ok)

# %% [markdown]
# ## Speed on this machine
#
# C1 of LeNet-5 (6 kernels of 5×5 on a 32×32 digit) on a batch of 16, one thread, the best of a few repeats.

# %%
batch, kernels = torch.randn(16, 1, 32, 32), torch.randn(6, 1, 5, 5)
c1_loop = ops.LoopConv2d(1, 6, 5)
with torch.no_grad():
    c1_loop.weight.copy_(kernels)


def best_ms(fn, repeats=3):
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        with torch.no_grad():
            fn()
        times.append(1e3 * (time.perf_counter() - start))
    return min(times)


speed = {
    "loop": best_ms(lambda: c1_loop(batch), repeats=1),
    "im2col": best_ms(lambda: ops.conv2d(batch, kernels)),
    "torch": best_ms(lambda: F.conv2d(batch, kernels)),
}
for name, ms in speed.items():
    print(f"{name:7} {ms:9.3f} ms   {ms / speed['torch']:8.1f}x torch")
plt.figure(figsize=(5, 2.5))
plt.barh(list(speed), list(speed.values()))
plt.xscale("log")
plt.xlabel("milliseconds for 16 digits (log scale)")
plt.title("LeNet-5's C1 three ways")
plt.show()

# %% [markdown]
# ## A whole LeNet-5 from the scratch operators
#
# `lenet5-scratch` is LeNet-5 built from `lenetlab.ops`; with `lenet5`'s weights copied in, it gives the same scores.

# %%
torch_net, scratch_net = create("lenet5").eval(), create("lenet5-scratch").eval()
scratch_net.load_state_dict(torch_to_scratch(torch_net.state_dict()))
digits = torch.randn(8, 1, 32, 32)
with torch.no_grad():
    net_diff = float((torch_net(digits) - scratch_net(digits)).abs().max())
print(f"lenet5 vs lenet5-scratch: max |difference| of the scores {net_diff:.1e}")

# %% [markdown]
# ## What this notebook showed, checked

# %%
assert max(conv_diff.values()) < 1e-5, conv_diff
assert max(pool_diff.values()) < 1e-5, pool_diff
assert conv_ok and pool_ok
assert net_diff < 1e-5, net_diff
assert speed["im2col"] < speed["loop"], speed
print("all checks passed")
