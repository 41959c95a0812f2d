"""The CNN chapter as runnable lessons (``lenet lesson``): one short module per lesson, with a docstring
explaining its idea and ``run(report, **options)``, which computes what the book shows with lenetlab's
operators, prints it through a :class:`~lenetlab.lessons.report.Report` and checks its claims.
:data:`LESSONS`, the catalogue, imports no lesson module (nor torch).

Python API: ``report = run_lesson("learn-kernel", lr=0.01, steps=40)``, then ``print(report)``,
``report.data["kernel"]``, ``report.passed``.
"""

import importlib
import inspect
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from lenetlab.errors import ConfigError, LenetlabError, did_you_mean


@dataclass(frozen=True)
class Option:
    """One thing a learner can change: ``--NAME`` on the command line (an optional positional argument when
    ``positional``: ``lenet lesson shapes vgg11``), keyword ``NAME`` in Python."""

    name: str
    type: Callable[[str], Any]
    default: Any
    help: str
    positional: bool = False
    choices: tuple | None = None


@dataclass(frozen=True)
class Lesson:
    """A catalogue entry: ``module`` (under ``lenetlab.lessons``) holds the lesson's ``run``."""

    name: str
    module: str
    summary: str
    options: tuple[Option, ...] = ()

    def load(self):
        """The lesson's module, imported."""
        return importlib.import_module(f"lenetlab.lessons.{self.module}")

    @property
    def idea(self) -> str:
        """The module's docstring: the idea in a few sentences."""
        return inspect.getdoc(self.load()) or ""

    def source(self) -> str:
        """The module's source code."""
        return inspect.getsource(self.load())


def _catalogue(*lessons: Lesson) -> dict[str, Lesson]:
    table: dict[str, Lesson] = {}
    for lesson in lessons:
        if lesson.name in table:
            raise ValueError(f"lesson name {lesson.name!r} is listed twice")
        table[lesson.name] = lesson
    return table


#: Every lesson, in the book's order.
LESSONS: dict[str, Lesson] = _catalogue(
    Lesson(
        "edge-detection",
        "edges",
        "cross-correlation; a [1, -1] kernel finds the vertical edges of a 6x8 image",
        (Option("kernel", str, "1,-1", "the kernel: numbers separated by commas, rows by ';' (e.g. '1;-1')"),),
    ),
    Lesson(
        "learn-kernel",
        "learn_kernel",
        "learn the edge kernel back from the image and its edge map by gradient descent on a from-scratch conv layer",
        (
            Option("lr", float, 0.03, "learning rate"),
            Option("steps", int, 10, "gradient steps"),
            Option("every", int, 2, "print the loss every this many steps"),
            Option("seed", int, 0, "seed of the kernel's random start"),
            Option(
                "impl",
                str,
                "im2col",
                "from-scratch conv layer: im2col (lenetlab.ops.Conv2d) or loop (lenetlab.ops.LoopConv2d)",
                choices=("im2col", "loop"),
            ),
        ),
    ),
    Lesson(
        "padding-stride",
        "padding_stride",
        "the output-shape formula floor((n - k + p + s) / s) on the book's four cases, checked against two conv layers",
        (Option("size", int, 8, "input height and width n"),),
    ),
    Lesson(
        "channels",
        "channels",
        "multi-input and multi-output channels; a 1x1 convolution is a fully connected layer at every pixel",
        (Option("seed", int, 0, "seed of the random 1x1 example"),),
    ),
    Lesson("pooling", "pooling", "max and average pooling, padding and stride, several channels"),
    Lesson(
        "train-lenet",
        "train_lenet",
        "train d2l's sigmoid LeNet, then the ReLU/max-pooling one, on the embedded subset: curves and accuracies",
        (
            Option("epochs", int, 12, "epochs for each network"),
            Option("batch", int, 64, "minibatch size"),
            Option("seed", int, 0, "seed of the weights and the batch order"),
        ),
    ),
    Lesson(
        "batch-norm",
        "batch_norm",
        "batch normalisation from scratch next to nn.BatchNorm2d: training, evaluation, running statistics",
        (
            Option("seed", int, 0, "seed of the random batches"),
            Option("steps", int, 3, "training-mode batches before switching to evaluation"),
        ),
    ),
    Lesson(
        "shapes",
        "shapes",
        "each zoo model's layer-by-layer output shapes for its book input",
        (
            Option(
                "model",
                str,
                None,
                "a registered model (default: the book's LeNet, AlexNet, VGG-11, NiN, GoogLeNet, ResNet-18)",
                positional=True,
            ),
        ),
    ),
    Lesson(
        "lenet5-by-hand",
        "lenet5_by_hand",
        "NNDL's hand count of LeNet-5's parameters and FLOPs next to what `lenet profile` counts",
    ),
    Lesson("im2col", "im2col", "how lenetlab.ops.conv2d turns a convolution into one matrix multiply"),
)


def list_lessons() -> list[Lesson]:
    """Every lesson in the catalogue, in the book's order."""
    return list(LESSONS.values())


def get_lesson(name: str) -> Lesson:
    """The catalogue entry ``name``, or a :class:`LenetlabError` suggesting close names."""
    try:
        return LESSONS[name]
    except KeyError:
        hint = did_you_mean(name, LESSONS)
        raise LenetlabError(f"unknown lesson {name!r}{hint}; lessons: {', '.join(LESSONS)}") from None


def run_lesson(name: str, **options):
    """Run lesson ``name`` with ``options`` (the catalogue's defaults for any left out) and return its
    :class:`~lenetlab.lessons.report.Report`; an unknown option is a :class:`ConfigError`."""
    lesson = get_lesson(name)
    known = {o.name: o.default for o in lesson.options}
    unknown = sorted(set(options) - set(known))
    if unknown:
        raise ConfigError(f"lesson {name}: unknown option {unknown[0]!r} (options: {', '.join(known) or 'none'})")
    import torch  # not at the top: the catalogue alone (``lenet --help``, ``lenet lesson``) needs no torch

    from lenetlab.lessons.report import Report
    from lenetlab.timing import threads

    report = Report(name)
    # Seeded for repeatable output, leaving the caller's random state alone; one thread, since how a sum
    # is split across threads changes float32 results in the 7th digit, which the lessons print.
    with torch.random.fork_rng(devices=[]), threads(1):
        torch.manual_seed(0)
        lesson.load().run(report, **{**known, **options})
    return report


def lesson_text(lesson: Lesson, report) -> str:
    """What ``lenet lesson NAME`` prints: the summary, the idea (module docstring) and the results."""
    return f"{lesson.name}: {lesson.summary}\n\n{lesson.idea}\n\n{report.text()}"


def format_listing() -> str:
    """One line per lesson: its name and summary."""
    width = max(len(name) for name in LESSONS)
    return "\n".join(f"{x.name:<{width}}  {x.summary}" for x in list_lessons())


__all__ = ["LESSONS", "Lesson", "Option", "format_listing", "get_lesson", "lesson_text", "list_lessons", "run_lesson"]
