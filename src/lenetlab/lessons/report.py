"""What a lesson shows: text for people and the same numbers as plain data for ``--json``.

:meth:`Report.show` prints a value *and* records it, so the text and the JSON never disagree;
:meth:`Report.check` states a claim and whether it held (``lenet lesson`` exits 1 when one fails).
"""

import itertools
import math
from dataclasses import dataclass, field

import torch

from lenetlab.textfmt import align


def plain(value):
    """``value`` as JSON-ready data: tensors and tuples become lists, non-finite floats strings."""
    if isinstance(value, torch.Tensor):
        return value.detach().cpu().tolist()
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)  # JSON has no NaN or infinity
    return value


def max_diff(a: torch.Tensor, b: torch.Tensor) -> float:
    """The largest absolute difference between ``a`` and ``b``."""
    return (a - b).abs().max().item()


def format_difference(v: float) -> str:
    """A float32 rounding difference: ``< 1e-05`` below that bound (its digits vary between CPUs), else ``v:.1e``."""
    return "< 1e-05" if abs(v) < 1e-5 else f"{v:.1e}"


def format_number(v: float, decimals: int = 4, integral: bool = False) -> str:
    """``v`` with ``decimals`` places (as an integer if ``integral``; in e-notation beyond a million)."""
    if integral:
        return str(int(v))
    if not math.isfinite(v) or abs(v) >= 1e6:
        return f"{v:.{decimals}e}"
    text = f"{v:.{decimals}f}"
    return text[1:] if text.startswith("-") and float(text) == 0 else text  # no "-0.0000"


def format_tensor(t: torch.Tensor, decimals: int = 4, indent: str = "  ") -> str:
    """A tensor as aligned text: 0-D or 1-D on one line, a matrix as rows, each ``H x W`` matrix of a
    ``[..., H, W]`` tensor under its index. Whole numbers print without decimals."""
    t = t.detach().cpu().double()
    flat = t.reshape(-1).tolist()
    integral = all(math.isfinite(v) and v == int(v) and abs(v) < 1e15 for v in flat)
    cells = [format_number(v, decimals, integral) for v in flat]
    if t.dim() <= 1:
        return indent + "[" + ", ".join(cells) + "]"
    width = max(len(c) for c in cells)
    h, w = t.shape[-2], t.shape[-1]
    blocks = []
    for index, start in zip(itertools.product(*map(range, t.shape[:-2])), range(0, len(cells), h * w)):
        rows = [" ".join(c.rjust(width) for c in cells[start + r * w : start + (r + 1) * w]) for r in range(h)]
        if index:
            rows.insert(0, "[" + ", ".join(map(str, index)) + "]")
        blocks.append("\n".join(indent + r for r in rows))
    return "\n".join(blocks)


def format_table(head: list[str], rows: list[list], right=frozenset()) -> str:
    """Rows of cells as an aligned, indented text table under ``head``; columns in ``right`` align right."""
    lines = align([head, *rows], right)
    return "\n".join("  " + line for line in [lines[0], "-" * max(map(len, lines)), *lines[1:]])


@dataclass
class Report:
    """The result of one lesson run: printable ``lines``, plain ``data`` and named ``checks``."""

    lesson: str
    lines: list[str] = field(default_factory=list)
    data: dict = field(default_factory=dict)
    checks: dict[str, bool] = field(default_factory=dict)

    def say(self, text: str = "") -> None:
        """Print a line (or paragraph) of explanation."""
        self.lines.append(text)

    def section(self, title: str) -> None:
        """Start a new part of the lesson: a blank line and an underlined title."""
        self.lines += ["", title, "-" * len(title)]

    def show(self, key: str, title: str, value, decimals: int = 4):
        """Print ``title`` and ``value`` (tensor, number, shape or text), record it as ``data[key]`` and
        return it."""
        self.record(key, value)
        if isinstance(value, torch.Tensor) and value.dim() >= 1:
            self.lines += [f"{title}:", format_tensor(value, decimals)]
        elif isinstance(value, torch.Tensor):
            self.lines.append(f"{title}: {format_number(float(value), decimals, float(value).is_integer())}")
        elif isinstance(value, float) and 0 < abs(value) < 10**-decimals:
            self.lines.append(f"{title}: {format_difference(value)}")  # a tiny difference, not "0.0000"
        else:
            self.lines.append(f"{title}: {format_number(value, decimals) if isinstance(value, float) else value}")
        return value

    def differences(self, key: str, title: str, diffs: dict[str, float]) -> float:
        """Record ``diffs`` (name: largest difference) as ``data[key]``, print them after ``title`` and
        return the largest."""
        self.record(key, diffs)
        self.say(f"{title}: " + ", ".join(f"{k} {format_difference(v)}" for k, v in diffs.items()))
        return max(diffs.values())

    def record(self, key: str, value):
        """Record ``value`` as ``data[key]`` without printing it (a table shows it) and return it."""
        if key in self.data:
            raise ValueError(f"lesson {self.lesson}: data key {key!r} used twice")
        self.data[key] = plain(value)
        return value

    def check(self, key: str, claim: str, ok: bool) -> bool:
        """State ``claim`` with ``[ok]`` or ``[FAILED]`` in front and record it under ``checks[key]``."""
        if key in self.checks:
            raise ValueError(f"lesson {self.lesson}: check {key!r} made twice")
        self.checks[key] = bool(ok)
        self.lines.append(f"{'[ok]' if ok else '[FAILED]'} {claim}")
        return bool(ok)

    @property
    def passed(self) -> bool:
        """Whether every check held."""
        return all(self.checks.values())

    def text(self) -> str:
        """The printable lesson output."""
        return "\n".join(self.lines).strip("\n")

    __str__ = text  # print(run_lesson("pooling")) shows the lesson

    def to_dict(self) -> dict:
        """``{"lesson", "passed", "checks", "data"}``: the ``--json`` form."""
        return {"lesson": self.lesson, "passed": self.passed, "checks": dict(self.checks), "data": self.data}
