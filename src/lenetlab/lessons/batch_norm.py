"""Batch normalisation, written from scratch and compared with nn.BatchNorm2d.

During training, batch normalisation takes each channel of a batch, subtracts the batch's mean
and divides by the square root of its variance plus a small eps, then scales by a learned gamma and
shifts by a learned beta: whatever the layer below produces, the next layer sees each channel
with mean beta and standard deviation gamma. It also keeps running averages of the means and
variances it has seen; in evaluation mode it normalises with those instead, so a prediction no
longer depends on which other images share the batch. lenetlab.ops.BatchNorm2d is written from
tensor operations; with the same gamma and beta it must give nn.BatchNorm2d's outputs, running
statistics and gradients, and the fully connected form must match nn.BatchNorm1d.
"""

import torch
import torch.nn as nn

from lenetlab.errors import ConfigError
from lenetlab.lessons.report import Report, max_diff
from lenetlab.ops import BatchNorm2d, batch_norm

TOLERANCE = 1e-5  # float32 results of two implementations that sum in different orders
MEANS, STDS = torch.tensor([2.0, -1.0, 0.5]), torch.tensor([3.0, 0.5, 1.0])  # of the 3 input channels
GAMMA, BETA = torch.tensor([1.0, 2.0, 0.5]), torch.tensor([0.0, 1.0, -1.0])


def batch(gen: torch.Generator, n: int = 8) -> torch.Tensor:
    """A random ``[n, 3, 4, 4]`` batch whose channels have means ``MEANS`` and standard deviations ``STDS``."""
    return torch.randn(n, 3, 4, 4, generator=gen) * STDS.view(1, 3, 1, 1) + MEANS.view(1, 3, 1, 1)


def run(report: Report, seed: int = 0, steps: int = 3) -> None:
    """Compare the two layers over ``steps`` training batches, then in evaluation mode."""
    if not 1 <= steps <= 1000:
        raise ConfigError(f"--steps: must be between 1 and 1000, got {steps}")
    gen = torch.Generator().manual_seed(seed)
    ours, theirs = BatchNorm2d(3), nn.BatchNorm2d(3)
    with torch.no_grad():
        for layer in (ours, theirs):
            layer.weight.copy_(GAMMA)
            layer.bias.copy_(BETA)
    report.say("lenetlab.ops.BatchNorm2d(3) and nn.BatchNorm2d(3), both with gamma = [1, 2, 0.5], beta = [0, 1, -1];")
    report.say("batches [8, 3, 4, 4] with channel means [2, -1, 0.5] and standard deviations [3, 0.5, 1]")
    training(report, gen, ours, theirs, steps)
    running_statistics(report, gen, ours, theirs)
    evaluation(report, gen, ours, theirs)

    report.section("After a fully connected layer: normalise each feature")
    X = torch.randn(16, 5, generator=gen) * 2 + 3  # [N, features]
    bn1d, mean, var = nn.BatchNorm1d(5), torch.zeros(5), torch.ones(5)
    diff = max_diff(batch_norm(X, mean, var, training=True), bn1d(X))
    diff = max(diff, max_diff(mean, bn1d.running_mean), max_diff(var, bn1d.running_var))
    report.show("fc_diff", "largest difference from nn.BatchNorm1d (outputs and running statistics)", diff)
    claim = f"lenetlab.ops.batch_norm on [16, 5] matches nn.BatchNorm1d within {TOLERANCE}"
    report.check("fc", claim, diff < TOLERANCE)


def training(report: Report, gen: torch.Generator, ours: nn.Module, theirs: nn.Module, steps: int) -> None:
    """Outputs of ``steps`` training batches, then the gradients of the last one."""
    report.section(f"Training mode: {steps} batches")
    diffs = []
    for _ in range(steps):
        X = batch(gen)
        X_ours, X_theirs = X.clone().requires_grad_(), X.clone().requires_grad_()
        Y, Y_ref = ours(X_ours), theirs(X_theirs)
        diffs.append(max_diff(Y, Y_ref))
    report.show("out_mean", "output mean per channel (= beta)", Y.detach().mean(dim=(0, 2, 3)))
    report.show("out_std", "output std per channel (= gamma)", Y.detach().std(dim=(0, 2, 3), unbiased=False))
    report.show("train_diff", "largest output difference over the batches", max(diffs))
    report.check("train", f"training-mode outputs agree within {TOLERANCE}", max(diffs) < TOLERANCE)

    weights = torch.randn(Y.shape, generator=gen)  # any loss: sum(Y * weights)
    (Y * weights).sum().backward()
    (Y_ref * weights).sum().backward()
    grads = {
        "input": max_diff(X_ours.grad, X_theirs.grad),
        "gamma": max_diff(ours.weight.grad, theirs.weight.grad),
        "beta": max_diff(ours.bias.grad, theirs.bias.grad),
    }
    largest = report.differences("grad_diffs", "largest gradient difference", grads)
    report.check("grads", f"gradients for input, gamma and beta agree within {TOLERANCE}", largest < TOLERANCE)


def running_statistics(report: Report, gen: torch.Generator, ours: nn.Module, theirs: nn.Module) -> None:
    """The running means and variances of both layers, and the book's convention against torch's."""
    report.section("Running statistics")
    report.say("each training batch moves them 10% of the way: running = 0.9 * running + 0.1 * batch")
    for stat in ("running_mean", "running_var"):
        report.show(stat, f"{stat} (ours)", getattr(ours, stat))
        report.show(f"{stat}_torch", f"{stat} (torch)", getattr(theirs, stat))
    stats = max(max_diff(ours.running_mean, theirs.running_mean), max_diff(ours.running_var, theirs.running_var))
    report.check("running", f"running statistics agree within {TOLERANCE}", stats < TOLERANCE)
    report.say("The book's own batch_norm keeps momentum 0.9 (the share kept; torch's momentum=0.1 is the share")
    report.say(
        "added) and averages the biased batch variance, where torch averages the unbiased one. One batch shows it:"
    )
    X, fresh = batch(gen), nn.BatchNorm2d(3)
    fresh(X)
    count = X.numel() // X.shape[1]  # values per channel in the batch
    biased = X.var(dim=(0, 2, 3), unbiased=False)
    book = report.show("book_running_var", "the book: 0.9 * 1 + 0.1 * biased variance", 0.9 + 0.1 * biased)
    report.show("torch_running_var", "torch:    0.9 * 1 + 0.1 * unbiased variance", fresh.running_var)
    unbiased = max_diff(fresh.running_var, 0.9 + 0.1 * biased * count / (count - 1))
    claim = f"torch's update is the book's with the variance scaled by {count}/{count - 1}"
    report.check("conventions", claim, unbiased < TOLERANCE and max_diff(book, fresh.running_var) > 1e-4)


def evaluation(report: Report, gen: torch.Generator, ours: nn.Module, theirs: nn.Module) -> None:
    """Both layers in evaluation mode, and an image alone against the same image in a batch."""
    report.section("Evaluation mode")
    ours.eval()
    theirs.eval()
    X = batch(gen)
    with torch.no_grad():
        Y, Y_ref = ours(X), theirs(X)
        alone = ours(X[:1])
    diff = report.show("eval_diff", "largest output difference", max_diff(Y, Y_ref))
    report.check("eval", f"evaluation-mode outputs agree within {TOLERANCE}", diff < TOLERANCE)
    claim = "in evaluation mode an image's output is the same alone or in a batch"
    report.check("eval_independent", claim, max_diff(alone, Y[:1]) < TOLERANCE)
    ours.train()
    with torch.no_grad():
        in_batch, alone = ours(X)[:2], ours(X[:2])
    claim = "in training mode it is not: it depends on the rest of the batch"
    report.check("train_dependent", claim, max_diff(alone, in_batch) > 1e-3)
