"""Tables that fit a width by giving up what matters least, in an order the caller states.

Rich, given a table wider than the terminal, narrows every column that may wrap: a job id is
folded onto several lines and a state squeezed, while a description keeps its room. Here the
caller says what to give up first (``shrink`` a column, cutting its cells with an ellipsis, down
to its ``shrink_to``; ``drop`` it), and the columns that are never cut (an id, a state) keep
their whole width. Pure: the width is an argument (a renderable's ``options.max_width``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal

from rich import box
from rich.console import JustifyMethod, RenderableType
from rich.table import Table
from rich.text import Text

__all__ = ["GAP", "Column", "Move", "fit"]

GAP = 2
"""Spaces between two columns."""

Move = tuple[Literal["shrink", "drop"], str]
"""One step towards a narrower table: shrink or drop the column with that header."""


@dataclass
class Column:
    header: str
    cells: list[Text] = field(default_factory=list)
    justify: JustifyMethod = "left"
    header_style: str = ""
    shrink_to: int | None = None
    """How narrow a ``shrink`` may make it (its cells cut with an ellipsis)."""

    @property
    def natural(self) -> int:
        return max([len(self.header), *(cell.cell_len for cell in self.cells)])


@dataclass
class _Plan:
    columns: list[Column]
    widths: dict[str, int]

    @property
    def total(self) -> int:
        return sum(self.widths[c.header] for c in self.columns) + GAP * (len(self.columns) - 1)

    def apply(self, move: Move, excess: int) -> None:
        kind, header = move
        column = next((c for c in self.columns if c.header == header), None)
        if column is None:
            return
        if kind == "drop":
            self.columns.remove(column)
        elif column.shrink_to is not None:
            self.widths[header] = max(column.shrink_to, self.widths[header] - excess)


def fit(
    columns: Sequence[Column],
    width: int,
    moves: Sequence[Move],
    *,
    fold: str | None = None,
    section_before_last: bool = False,
) -> Table:
    """The table of ``columns`` in at most ``width`` cells, after as few ``moves`` as that
    takes. If it is still too wide, the ``fold`` column is folded onto more lines; without one,
    the table is as wide as it must be (a terminal wraps the line, a pipe keeps it whole).
    ``section_before_last``: a rule above the last row (a total)."""
    plan = _Plan(list(columns), {c.header: c.natural for c in columns})
    for move in moves:
        if plan.total <= width:
            break
        plan.apply(move, plan.total - width)
    folded = fold if fold is not None and plan.total > width else None
    if folded is not None:
        plan.widths[folded] = max(1, plan.widths[folded] - (plan.total - width))
    table = Table(
        box=box.SIMPLE_HEAD,
        show_edge=False,
        pad_edge=False,
        padding=(0, 1),
        collapse_padding=True,
        width=plan.total,
    )
    for column in plan.columns:
        table.add_column(
            column.header,
            justify=column.justify,
            header_style=column.header_style,
            width=plan.widths[column.header],
            no_wrap=column.header != folded,
            overflow="fold" if column.header == folded else "ellipsis",
        )
    rows = max((len(c.cells) for c in plan.columns), default=0)
    for index in range(rows):
        cells: list[RenderableType] = []
        for column in plan.columns:
            cell = column.cells[index].copy()
            if column.header == folded:
                cell.no_wrap, cell.overflow = False, "fold"
            else:
                cell.no_wrap, cell.overflow = True, "ellipsis"
            cells.append(cell)
        table.add_row(*cells, end_section=section_before_last and index == rows - 2)
    return table
