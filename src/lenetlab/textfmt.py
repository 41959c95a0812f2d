"""Text tables and number formats for the command line and the docs, and :class:`Output`, the result
every ``lenet`` command returns to the CLI; shared by every package (imports nothing of lenetlab)."""

from dataclasses import dataclass, field
from typing import Any


@dataclass
class Output:
    """A command's result, which only :mod:`lenetlab.cli` prints: ``data`` with ``--json`` (JSON-safe), else
    ``text`` (None: nothing); ``notes`` on stderr either way; ``status`` the exit status."""

    data: Any
    text: str | None = None
    notes: list[str] = field(default_factory=list)
    status: int = 0


def quiet(text: str, err: bool = False) -> None:
    """The ``say(text, err=False)`` of a caller that shows no progress (the CLI's shows lines as a command runs)."""


def align(rows: list[list], right=frozenset()) -> list[str]:
    """``rows`` of cells (shown with ``str``) as text lines whose columns line up two spaces apart, the
    columns whose index is in ``right`` right-aligned; trailing spaces stripped."""
    cells = [[str(c) for c in row] for row in rows]
    widths = [max(len(row[i]) for row in cells if i < len(row)) for i in range(max(map(len, cells), default=0))]
    return [
        "  ".join(c.rjust(w) if i in right else c.ljust(w) for i, (c, w) in enumerate(zip(row, widths))).rstrip()
        for row in cells
    ]


def plain(s: str) -> str:
    """Markdown cell or paragraph text as terminal text: without the ``**`` and backtick markers."""
    return s.replace("**", "").replace("`", "")


class Table:
    """A table of text cells written once and shown two ways: :meth:`text` for the terminal,
    :meth:`markdown` for the docs. Cells may hold markdown emphasis, dropped in the text form;
    ``align`` has one ``l``/``r`` per column (default: all left)."""

    def __init__(self, header: list[str], rows: list[list], align: str | None = None) -> None:
        self.header, self.rows = header, rows
        self.align = align or "l" * len(header)

    def markdown(self) -> list[str]:
        """The table as markdown lines (``|`` inside a cell escaped)."""
        sep = ["---:" if a == "r" else "---" for a in self.align]
        return ["| " + " | ".join(self.header) + " |", "|" + "|".join(sep) + "|"] + [
            "| " + " | ".join(str(c).replace("|", "\\|") for c in r) + " |" for r in self.rows
        ]

    def text(self) -> list[str]:
        """The table as aligned text lines under a rule."""
        lines = align(
            [[plain(str(c)) for c in r] for r in [self.header, *self.rows]],
            right={i for i, a in enumerate(self.align) if a == "r"},
        )
        return [lines[0], "-" * max(map(len, lines)), *lines[1:]]


def columns(rows: list, *cols) -> Table:
    """A :class:`Table` of ``rows`` from ``cols``, each ``(header, align, cell)``: ``cell`` is a format
    string filled from the row (``"{p50_ms:.1f} ms"``) or a function of the row."""
    cells = [[c(r) if callable(c) else c.format_map(r) for _, _, c in cols] for r in rows]
    return Table([h for h, _, _ in cols], cells, "".join(a for _, a, _ in cols))


def render(blocks: list, markdown: bool) -> list[str]:
    """``blocks`` (:class:`Table` or paragraph strings) as markdown or terminal lines, a blank line between blocks."""
    out: list[str] = []
    for b in blocks:
        out += ([""] if out else []) + (
            (b.markdown() if markdown else b.text()) if isinstance(b, Table) else [b if markdown else plain(b)]
        )
    return out


def pct(x, digits: int = 2) -> str:
    """A percentage already in percent units (``0.77%``); ``n/a`` for None."""
    return "n/a" if x is None else f"{x:.{digits}f}%"


def num(x) -> str:
    """A whole number with thousands separated (``55,000``); ``n/a`` for None."""
    return "n/a" if x is None else f"{x:,.0f}"


def sig(x, digits: int = 3) -> str:
    """``x`` with ``digits`` significant digits, thousands separated (``0.0182``, ``15.2``, ``1,388``)."""
    if x is None:
        return "n/a"
    if x == 0:
        return "0"
    if abs(x) >= 10 ** (digits - 1):
        return f"{x:,.0f}"
    return f"{x:.{digits}g}" if abs(x) >= 1e-3 else f"{x:.1e}"


def ratio(x) -> str:
    """A ratio (``1.68×``, ``1,065×``); ``n/a`` for None."""
    return "n/a" if x is None else (f"{x:,.0f}×" if x >= 100 else f"{x:.2f}×")


def sci(x) -> str:
    """Scientific notation with one decimal (``4.8e-06``); ``n/a`` for None."""
    return "n/a" if x is None else f"{x:.1e}"


def threads(n: int) -> str:
    """``1 thread``, ``2 threads``."""
    return f"{n} thread{'s' if n != 1 else ''}"
