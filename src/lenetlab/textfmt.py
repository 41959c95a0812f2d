"""Plain-text tables for the command line, shared by every package (imports nothing of lenetlab)."""

from __future__ import annotations


def align(rows: list[list], right=frozenset()) -> list[str]:
    """``rows`` of cells as text lines whose columns line up, two spaces apart.

    Cells are shown with ``str``; columns whose index is in ``right`` are right-aligned (numbers),
    the others left-aligned. Trailing spaces are stripped.
    """
    cells = [[str(c) for c in row] for row in rows]
    widths = [max(len(row[i]) for row in cells if i < len(row)) for i in range(max(map(len, cells), default=0))]
    return ["  ".join(c.rjust(w) if i in right else c.ljust(w) for i, (c, w) in enumerate(zip(row, widths))).rstrip()
            for row in cells]
