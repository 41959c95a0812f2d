"""Layer-by-layer output shapes of the chapter's networks.

The book checks each network by pushing one random image through it and printing every layer's
output shape: the quickest way to see how convolutions, pooling and strides trade height and
width for channels (AlexNet goes from 1x224x224 to 256x5x5), where a network flattens, and that
the last layer gives one score per class. It also catches the commonest bug in a new network: a
fully connected layer whose input size is not what the convolutions produce. This lesson does the
same through lenetlab's model profiler (forward hooks on the registered models), on each network's
input from the book: 28x28 for LeNet, 96x96 for GoogLeNet, 224x224 for the others.
"""

from __future__ import annotations

from dataclasses import dataclass

from lenetlab.lessons.report import Report, format_table
from lenetlab.models import create, model_info
from lenetlab.models.profile import trace_shapes


@dataclass(frozen=True)
class BookView:
    """How the book prints a model: its input, which containers it lists layer by layer, what it prints."""

    input_size: tuple[int, int, int]
    expand: tuple[str, ...] = ()  # containers whose children the book's nn.Sequential holds directly
    printed: tuple[tuple[int, ...], ...] = ()  # the book's shapes for the layers lenetlab has as modules
    note: str = ""


_FC = ((1, 4096),) * 3  # Linear, ReLU, Dropout
#: The chapter's networks, in the book's order.
BOOK = {
    "lenet-d2l": BookView(
        (1, 28, 28),
        printed=((1, 6, 28, 28), (1, 6, 14, 14), (1, 16, 10, 10), (1, 16, 5, 5), (1, 120), (1, 84), (1, 10)),
        note="the book also lists each Sigmoid (same shape as the layer before) and Flatten "
        "[1, 400]: torch.sigmoid and torch.flatten in forward() here",
    ),
    "alexnet": BookView(
        (1, 224, 224),
        ("features", "classifier"),
        ((1, 96, 54, 54),) * 2
        + ((1, 96, 26, 26),)
        + ((1, 256, 26, 26),) * 2
        + ((1, 256, 12, 12),)
        + ((1, 384, 12, 12),) * 4
        + ((1, 256, 12, 12),) * 2
        + ((1, 256, 5, 5),)
        + _FC * 2
        + ((1, 10),),
        note="the book also lists Flatten [1, 6400]: torch.flatten in forward() here",
    ),
    "vgg11": BookView(
        (1, 224, 224),
        ("features", "classifier"),
        ((1, 64, 112, 112), (1, 128, 56, 56), (1, 256, 28, 28), (1, 512, 14, 14), (1, 512, 7, 7))
        + _FC * 2
        + ((1, 10),),
        note="the book also lists Flatten [1, 25088]: torch.flatten in forward() here",
    ),
    "nin": BookView(
        (1, 224, 224),
        ("net",),
        (
            (1, 96, 54, 54),
            (1, 96, 26, 26),
            (1, 256, 26, 26),
            (1, 256, 12, 12),
            (1, 384, 12, 12),
            (1, 384, 5, 5),
            (1, 384, 5, 5),
            (1, 10, 5, 5),
            (1, 10, 1, 1),
            (1, 10),
        ),
    ),
    "googlenet": BookView(
        (1, 96, 96), (), ((1, 64, 24, 24), (1, 192, 12, 12), (1, 480, 6, 6), (1, 832, 3, 3), (1, 1024), (1, 10))
    ),
    "resnet18": BookView(
        (1, 224, 224),
        ("head",),
        (
            (1, 64, 56, 56),
            (1, 64, 56, 56),
            (1, 128, 28, 28),
            (1, 256, 14, 14),
            (1, 512, 7, 7),
            (1, 512, 1, 1),
            (1, 512),
            (1, 10),
        ),
    ),
}


def book_rows(name: str) -> tuple[tuple[int, int, int], list[tuple[str, str, list, int]]]:
    """The layers the book prints for model ``name``: its input size and ``(layer, type, shape, params)`` rows.

    Models outside the book are shown at their registered input size, top-level modules only.
    """
    view = BOOK.get(name) or BookView(model_info(name).input_size)
    model = create(name, in_channels=view.input_size[0])
    modules = dict(model.named_modules())
    rows = []
    for layer, kind, shape in trace_shapes(model, view.input_size, name=name):
        parent = layer.rpartition(".")[0]
        if layer not in view.expand and (parent == "" or parent in view.expand):
            rows.append((layer, kind, shape, sum(p.numel() for p in modules[layer].parameters())))
    return view.input_size, rows


def run(report: Report, model: str | None = None) -> None:
    """Print the output shape of each layer the book lists, for ``model`` or every network of the chapter."""
    names = [model] if model else list(BOOK)
    for name in names:
        size, rows = book_rows(name)
        report.section(f"{name}: input {list((1, *size))}")
        report.say(
            format_table(
                ["layer", "type", "output shape", "params"],
                [[layer, kind, str(shape), f"{params:,}"] for layer, kind, shape, params in rows],
                right={3},
            )
        )
        report.record(
            name,
            {
                "input": [1, *size],
                "layers": [
                    {"layer": layer, "type": kind, "shape": shape, "params": params}
                    for layer, kind, shape, params in rows
                ],
            },
        )
        shapes = [shape for _, _, shape, _ in rows]
        view = BOOK.get(name)
        if view:
            if view.note:
                report.say(f"({view.note})")
            report.check(
                f"{name}_book",
                f"{name}: every shape is the one the book prints",
                shapes == [list(s) for s in view.printed],
            )
        else:
            report.check(f"{name}_scores", f"{name} ends with one score per class: {shapes[-1]}", shapes[-1] == [1, 10])
