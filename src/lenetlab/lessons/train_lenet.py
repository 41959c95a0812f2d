"""Train LeNet as d2l's LeNet section does: its sigmoid network first, then the ReLU and max-pooling one.

d2l's LeNet keeps the 1990s choices: sigmoid activations after every layer but the last, and average
pooling. It trains with plain minibatch SGD and cross-entropy, from Xavier-initialised weights, on
28x28 digits scaled to [0, 1] (C1 pads by 2, so C3 still sees 10x10 maps). Here both networks train
on the 1,000 training digits built into lenetlab and are scored on its 200 test digits after every
epoch. The sigmoid network barely moves: its gradients shrink by a factor of at least 4 through
every sigmoid, so in a couple of hundred steps it stays at chance (d2l gives it 10 epochs of 235 steps
on all 60,000 training digits). Swapping in ReLU, whose gradient is 1 wherever a unit is
active, and max pooling, which passes the strongest response on, the same network learns in the
first epochs. Each uses the learning rate d2l gives it: 0.9 for the sigmoid network, and 0.1 for
ReLU, which diverges at 0.9. The arithmetic is in float64, so the printed curves do not depend on
which float32 kernels a CPU picks.
"""

import torch
import torch.nn.functional as F

from lenetlab.data import load
from lenetlab.data.transforms import InputSpec, prepare
from lenetlab.errors import ConfigError
from lenetlab.lessons.report import Report, format_table
from lenetlab.models import create

#: d2l's input: the 28x28 digit, pixels scaled to [0, 1] (``ToTensor()``), no normalisation.
SPEC = InputSpec(channels=1, size=28, resize="pad", mean=(0.0,), std=(1.0,))
PLOT_ROWS = 10  # one row per 10% of accuracy


def train(activation: str, pool: str, lr: float, epochs: int, batch_size: int, seed: int, splits) -> dict:
    """Train ``lenet-d2l`` with ``activation``/``pool`` by minibatch SGD; per epoch the mean training loss and
    the test accuracy (lists of ``epochs`` floats)."""
    torch.manual_seed(seed)
    net = create("lenet-d2l", activation=activation, pool=pool).double()
    opt = torch.optim.SGD(net.parameters(), lr=lr)
    x, y = prepare(splits.train.x, SPEC, torch.float64), splits.train.y  # [1000, 1, 28, 28], [1000]
    x_test, y_test = prepare(splits.test.x, SPEC, torch.float64), splits.test.y
    order = torch.Generator().manual_seed(seed)
    losses, accuracies = [], []
    for _ in range(epochs):
        net.train()
        total = 0.0
        for idx in torch.randperm(len(x), generator=order).split(batch_size):
            loss = F.cross_entropy(net(x[idx]), y[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
            total += loss.item() * len(idx)
        net.eval()
        with torch.no_grad():
            accuracies.append((net(x_test).argmax(1) == y_test).double().mean().item())
        losses.append(total / len(x))
    return {"loss": losses, "test_accuracy": accuracies}


def text_plot(curves: dict[str, list[float]], marks: dict[str, str]) -> list[str]:
    """Accuracy curves (values in [0, 1], one per epoch) as lines of text: one row per 10%, one column per
    epoch; each curve drawn with its mark, ``*`` where two meet."""
    epochs = max(len(c) for c in curves.values())
    grid = [[" "] * epochs for _ in range(PLOT_ROWS + 1)]
    for name, values in curves.items():
        for e, v in enumerate(values):
            row = PLOT_ROWS - round(v * PLOT_ROWS)
            grid[row][e] = marks[name] if grid[row][e] in (" ", marks[name]) else "*"
    lines = [
        f"  {100 * (PLOT_ROWS - r) // PLOT_ROWS:>3}% |" + "  ".join(cells).rstrip() for r, cells in enumerate(grid)
    ]
    lines.append("       +" + "-" * (3 * epochs - 2))
    lines.append("  epoch " + "".join(f"{e + 1:<3}" for e in range(epochs)).rstrip())
    lines.append("  " + ", ".join(f"{marks[n]} = {n}" for n in curves))
    return lines


def run(report: Report, epochs: int = 12, batch: int = 64, seed: int = 0) -> None:
    """Train both networks for ``epochs`` on the embedded subset and compare them."""
    if not 1 <= epochs <= 50:
        raise ConfigError(f"--epochs: must be between 1 and 50, got {epochs}")
    if not 1 <= batch <= 1000:
        raise ConfigError(f"--batch: must be between 1 and 1000, got {batch}")
    splits = load("mnist-subset")
    report.say(
        f"lenet-d2l on the embedded MNIST subset: {len(splits.train):,} training and {len(splits.test)} test "
        f"digits, {epochs} epochs of minibatch SGD, batch {batch} "
        f"({-(-len(splits.train) // batch)} steps per epoch), seed {seed}"
    )
    sig = report.record("sigmoid", train("sigmoid", "avg", 0.9, epochs, batch, seed, splits))
    relu = report.record("relu", train("relu", "max", 0.1, epochs, batch, seed, splits))

    report.section("Training loss and test accuracy per epoch")
    rows = []
    for e in range(epochs):
        rows.append([e + 1])
        for r in (sig, relu):
            rows[-1] += [f"{r['loss'][e]:.3f}", f"{100 * r['test_accuracy'][e]:.1f}%"]
    head = ["epoch", "sigmoid loss", "test acc", "ReLU loss", "test acc"]
    report.say(format_table(head, rows, right={0, 1, 2, 3, 4}))

    report.section("Test accuracy")
    curves = {"sigmoid": sig["test_accuracy"], "ReLU": relu["test_accuracy"]}
    report.say("\n".join(text_plot(curves, {"sigmoid": "s", "ReLU": "r"})))
    report.say()
    final_sig, final_relu = sig["test_accuracy"][-1], relu["test_accuracy"][-1]
    report.say(
        f"after {epochs} epochs: sigmoid, average pooling (lr 0.9) {100 * final_sig:.1f}%, "
        f"ReLU, max pooling (lr 0.1) {100 * final_relu:.1f}% test accuracy"
    )
    claim = "the ReLU/max-pooling LeNet beats the sigmoid/average-pooling one"
    report.check("relu_wins", claim, final_relu > final_sig)
    report.check("relu_learns", "the ReLU/max-pooling LeNet reads more than half the test digits", final_relu > 0.5)
