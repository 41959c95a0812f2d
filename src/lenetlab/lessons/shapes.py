"""Layer-by-layer output shapes of the chapter's networks.

The book checks each network by pushing one random image through it and printing every layer's
output shape: the quickest way to see how convolutions, pooling and strides trade height and
width for channels (AlexNet goes from 1x224x224 to 256x5x5), where a network flattens, and that
the last layer gives one score per class. It also catches the commonest bug in a new network: a
fully connected layer whose input size is not what the convolutions produce. This lesson does the
same through lenetlab's model profiler (forward hooks on the registered models), on each network's
input from the book: 28x28 for LeNet, 96x96 for GoogLeNet, 224x224 for the others.
"""

from dataclasses import dataclass

from lenetlab.lessons.report import Report, format_table
from lenetlab.models import create, model_info
from lenetlab.models.profile import trace_shapes


@dataclass(frozen=True)
class BookView:
    """How the book prints a model: its input, the containers it lists layer by layer (its nn.Sequential
    holds their children directly), the shapes it prints for the layers lenetlab has as modules (without
    the batch dimension, ``*n`` for n layers in a row, as in ``"4096*3 10"``) and a note."""

    input_size: tuple[int, int, int]
    expand: tuple[str, ...] = ()
    printed: str = ""
    note: str = ""

    def shapes(self) -> list[list[int]]:
        """The printed shapes as lists, batch dimension first: ``[[1, 4096], [1, 4096], [1, 4096], [1, 10]]``."""
        shapes = []
        for item in self.printed.split():
            shape, _, times = item.partition("*")
            shapes += [[1, *map(int, shape.split("x"))]] * int(times or 1)
        return shapes


#: The chapter's networks, in the book's order.
BOOK = {
    "lenet-d2l": BookView(
        (1, 28, 28),
        printed="6x28x28 6x14x14 16x10x10 16x5x5 120 84 10",
        note="the book also lists each Sigmoid (same shape as the layer before) and Flatten "
        "[1, 400]: torch.sigmoid and torch.flatten in forward() here",
    ),
    "alexnet": BookView(
        (1, 224, 224),
        ("features", "classifier"),
        "96x54x54*2 96x26x26 256x26x26*2 256x12x12 384x12x12*4 256x12x12*2 256x5x5 4096*6 10",
        "the book also lists Flatten [1, 6400]: torch.flatten in forward() here",
    ),
    "vgg11": BookView(
        (1, 224, 224),
        ("features", "classifier"),
        "64x112x112 128x56x56 256x28x28 512x14x14 512x7x7 4096*6 10",
        "the book also lists Flatten [1, 25088]: torch.flatten in forward() here",
    ),
    "nin": BookView(
        (1, 224, 224), ("net",), "96x54x54 96x26x26 256x26x26 256x12x12 384x12x12 384x5x5*2 10x5x5 10x1x1 10"
    ),
    "googlenet": BookView((1, 96, 96), (), "64x24x24 192x12x12 480x6x6 832x3x3 1024 10"),
    "resnet18": BookView((1, 224, 224), ("head",), "64x56x56*2 128x28x28 256x14x14 512x7x7 512x1x1 512 10"),
}


def book_rows(name: str) -> tuple[tuple[int, int, int], list[tuple[str, str, list, int]]]:
    """The input size of model ``name`` and the ``(layer, type, shape, params)`` rows of the layers the
    book prints (for models outside the book: the top-level modules, at the registered input size)."""
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
    for name in [model] if model else list(BOOK):
        size, rows = book_rows(name)
        report.section(f"{name}: input {list((1, *size))}")
        table = [[layer, kind, str(shape), f"{params:,}"] for layer, kind, shape, params in rows]
        report.say(format_table(["layer", "type", "output shape", "params"], table, right={3}))
        layers = [dict(zip(("layer", "type", "shape", "params"), row)) for row in rows]
        report.record(name, {"input": [1, *size], "layers": layers})
        shapes = [shape for _, _, shape, _ in rows]
        view = BOOK.get(name)
        if view and view.note:
            report.say(f"({view.note})")
        if view:
            claim = f"{name}: every shape is the one the book prints"
            report.check(f"{name}_book", claim, shapes == view.shapes())
        else:
            report.check(f"{name}_scores", f"{name} ends with one score per class: {shapes[-1]}", shapes[-1] == [1, 10])
