"""Plain-text tables for command-line output."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

_GAP = "  "
# Cells that stand for a missing number and do not stop a column from reading as numeric.
PLACEHOLDERS = frozenset({"-", "n/a"})


def _is_numeric(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def format_table(rows: Sequence[Mapping[str, Any]], columns: Sequence[str]) -> str:
    """Format rows as an aligned text table with a header line and a rule under it.

    Args:
        rows: one mapping per row; a missing key or None prints as an empty cell. Cells are
            printed with ``str``, so the caller formats numbers (``f"{ap:.3f}"``).
        columns: the keys to print, in order; each is also its column's header.

    Returns:
        The table, lines joined by newlines, no trailing newline. A column whose cells all
        read as numbers (blanks and :data:`PLACEHOLDERS` aside) is right-aligned, the others
        left-aligned.
    """
    cells = [["" if row.get(column) is None else str(row[column]) for column in columns] for row in rows]
    widths = [max([len(column), *(len(line[i]) for line in cells)]) for i, column in enumerate(columns)]
    right = []
    for i in range(len(columns)):
        column_cells = [line[i] for line in cells if line[i] and line[i] not in PLACEHOLDERS]
        right.append(bool(column_cells) and all(_is_numeric(text) for text in column_cells))

    def render(line: Sequence[str]) -> str:
        padded = (text.rjust(w) if r else text.ljust(w) for text, w, r in zip(line, widths, right))
        return _GAP.join(padded).rstrip()

    rule = _GAP.join("-" * width for width in widths)
    return "\n".join([render(list(columns)), rule, *(render(line) for line in cells)])
