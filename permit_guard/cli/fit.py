"""Tables that fit a width: cells wrap where their text allows, never mid-word if avoidable.

Rich shrinks a table that is too wide by folding its widest columns at any
character (``mcp_server_resourc`` / ``es:read``) or by cropping them. A fitted
table decides the widths itself, and wraps each cell only after one of its
column's seams: between words first (``arg_amount,`` / ``arg_currency``),
then between the segments of a URI or a ``type:action`` (``data://reports/``
/ ``summary``), then inside an identifier. Columns give way in the order
their tiers say, each step the one that costs the fewest extra lines. Rich
folds a cell only when even the narrowest seams do not fit the terminal.

Example::

    from rich.console import Console

    from permit_guard.cli.fit import Column, fit_table

    grid = fit_table(
        [Column(header="name", shrink=2), Column(header="attributes", shrink=1, seams=(" ,",))],
        [["data://reports/summary", "arg_amount, arg_currency"]],
        width=30,
    )
    Console(width=30).print(grid)
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from rich import box
from rich.table import Table
from rich.text import Text

__all__ = ["SEAMS", "Column", "fit_table", "wrap"]

#: Where a cell may wrap, best first: between words, between the segments of a
#: URI or a ``type:action``, then inside an identifier.
SEAMS = (" ,", "/:", "_-.")

#: Columns are separated by two spaces: one of padding, one of the (blank) border.
_GAP = 2


@dataclass(frozen=True, kw_only=True, slots=True)
class Column:
    """One column of a fitted table.

    Attributes:
        header: The column's heading; it wraps at spaces.
        shrink: The tier in which the column gives way when the table is too
            wide, at each kind of seam: tier 1 first, then tier 2...; ``None``
            keeps it whole (short fixed words such as ``tool``).
        seams: The characters a cell may wrap after, best first: a column
            wraps at the later ones only when the earlier ones do not make
            the table fit.
    """

    header: str
    shrink: int | None = None
    seams: tuple[str, ...] = SEAMS


def _parts(value: str, breaks: str) -> list[str]:
    """``value`` cut after each run of break characters; joined they give it back."""
    if not value:
        return [""]
    pattern = f"[^{re.escape(breaks)}]*[{re.escape(breaks)}]*"
    return [part for part in re.findall(pattern, value) if part]


def wrap(value: str, width: int, breaks: str = "".join(SEAMS)) -> str:
    """``value`` as lines of at most ``width`` characters, cut after break characters.

    A part longer than ``width`` stays whole on its own line (the table folds it).
    """
    lines: list[str] = []
    line = ""
    for part in _parts(value, breaks):
        if line and len((line + part).rstrip()) > width:
            lines.append(line.rstrip())
            line = part
        else:
            line += part
    lines.append(line.rstrip())
    return "\n".join(lines)


def _wrapped(values: Sequence[str], width: int, breaks: str) -> tuple[int, int]:
    """The widest line of ``values`` wrapped to ``width``, and how many lines they take."""
    lines = [line for value in values for line in wrap(value, width, breaks).splitlines()]
    return max(len(line) for line in lines), len(lines)


def _narrow(
    members: list[int],
    cells: list[list[str]],
    breaks: dict[int, str],
    widths: list[int],
    excess: int,
) -> tuple[int, set[int]]:
    """Narrow the ``members`` columns of ``widths`` in place by ``excess``, if their seams allow.

    Each step wraps one column one seam further. A step that removes the rest
    of the excess alone is taken, the one adding the fewest lines; until then
    the step that gains the most width per line it adds. Every step narrows a
    column, so the loop ends.

    Returns:
        The excess left over, and the columns narrowed.
    """
    floors = {
        i: max(len(p.rstrip()) for v in cells[i] for p in _parts(v, breaks[i])) for i in members
    }
    lines = {i: _wrapped(cells[i], widths[i], breaks[i])[1] for i in members}
    steps: dict[int, tuple[int, int]] = {}
    narrowed: set[int] = set()
    while excess > 0:
        for i in members:
            if i not in steps and widths[i] > floors[i]:
                steps[i] = _wrapped(cells[i], widths[i] - 1, breaks[i])
        if not steps:
            break

        def gain(i: int) -> int:
            return widths[i] - steps[i][0]

        def added(i: int) -> int:
            return steps[i][1] - lines[i]

        enough = [i for i in steps if gain(i) >= excess]
        if enough:
            chosen = min(enough, key=lambda i: (added(i), gain(i)))
        else:
            chosen = max(steps, key=lambda i: (gain(i) / max(added(i), 1), widths[i]))
        excess -= gain(chosen)
        widths[chosen], lines[chosen] = steps.pop(chosen)
        narrowed.add(chosen)
    return excess, narrowed


def fit_table(columns: Sequence[Column], rows: Sequence[Sequence[str]], *, width: int) -> Table:
    """A plain table of ``rows`` no wider than ``width``, when its seams allow.

    Columns give way at their best seams first (between words), tier by tier,
    then at worse ones (inside identifiers), tier by tier. What still does not
    fit, rich folds.

    Args:
        columns: The columns, in order.
        rows: The cells, one string each, in column order.
        width: The most characters a line may take.

    Returns:
        A rich table whose cells are wrapped to the widths chosen.
    """
    cells = [[column.header, *(row[i] for row in rows)] for i, column in enumerate(columns)]
    widths = [max(len(value) for value in values) for values in cells]
    # The seams each column wraps at: its best ones, until it needs worse.
    breaks = {i: column.seams[0] for i, column in enumerate(columns)}
    excess = sum(widths) + _GAP * (len(columns) - 1) - width
    tiers = sorted({c.shrink for c in columns if c.shrink is not None})
    for level in range(max((len(column.seams) for column in columns), default=0)):
        for tier in tiers:
            members = [
                i for i, c in enumerate(columns) if c.shrink == tier and len(c.seams) > level
            ]
            if excess <= 0 or not members:
                continue
            trying = {i: "".join(columns[i].seams[: level + 1]) for i in members}
            excess, narrowed = _narrow(members, cells, trying, widths, excess)
            breaks.update({i: trying[i] for i in narrowed})
    grid = Table(box=box.SIMPLE, pad_edge=False, show_edge=False, padding=(0, 1, 0, 0))
    for i, column in enumerate(columns):
        grid.add_column(Text(wrap(column.header, widths[i], " ")), overflow="fold")
    for row in rows:
        grid.add_row(*(Text(wrap(row[i], widths[i], breaks[i])) for i in range(len(columns))))
    return grid
