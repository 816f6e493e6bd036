"""How the inspecting verbs print: tables whose ids stay whole, times, JSON."""

from __future__ import annotations

import json
import os
from typing import Any

from rich.console import Console, OverflowMethod
from rich.measure import Measurement
from rich.table import Table
from rich.text import Text

from gristmill.cli.console import console

RIGHT_ALIGNED = ("rows", "columns", "bad rows", "seconds")


def when(value: Any) -> str:
    """A time to the minute, or ``-``."""
    return value.strftime("%Y-%m-%d %H:%M") if value else "-"


def table(*columns: str, ids: tuple[str, ...] = (), **options: Any) -> Table:
    """A table whose cells end as ``overflow_of`` says: ids whole, other text wrapped."""
    made = Table(**options)
    for column in columns:
        right = column in RIGHT_ALIGNED
        made.add_column(
            column,
            no_wrap=column in ids,
            overflow=overflow_of(column in ids),
            justify="right" if right else "left",
        )
    return made


def overflow_of(is_id: bool) -> OverflowMethod:
    """How a cell too wide for its column ends: an id is never wrapped (it must be
    copyable; only a terminal too narrow even for it cuts it, with …); any other text
    wraps between words, a word wider than the column folding whole onto the next line."""
    return "ellipsis" if is_id else "fold"


UNBOUNDED = 1_000_000
HEADER_READABLE = 8
"""A column squeezed narrower than its header (up to this many characters) is unreadable."""


def print_table(made: Table, out: Console = console) -> None:
    """``made`` as a table when it fits the terminal (``COLUMNS`` counts even when piped);
    else as one block per row — ``column: value`` lines, a blank line between rows — so a
    narrow terminal shows every value whole instead of cut ids or one letter per line."""
    width = terminal_width(out)
    if fits(made, width, out):
        out.print(made, width=width)
        return
    if made.title:
        out.print(made.title, style="bold", highlight=False)
    names = [_plain(c.header) for c in made.columns]
    pad = max((len(n) for n in names), default=0)
    rows = zip(*(list(c.cells) for c in made.columns), strict=True)
    for index, cells in enumerate(rows):
        if index:
            out.print()
        for name, cell in zip(names, cells, strict=True):
            value = _plain(cell)
            out.print(Text(f"{name + ':':<{pad + 1}} ", style="dim") + Text(value), soft_wrap=True)


def terminal_width(out: Console = console) -> int:
    """The width to print for: a terminal's own; piped, ``COLUMNS`` when set (a piped
    console is 160 wide otherwise)."""
    if out.is_terminal:
        return out.width
    given = os.environ.get("COLUMNS", "")
    return int(given) if given.isdigit() and int(given) > 0 else out.width


def fits(made: Table, width: int, out: Console = console) -> bool:
    """Whether ``made`` shows readably in ``width`` columns: whole, or wrapped with every
    column at least as wide as its header (up to ``HEADER_READABLE``) and its longest word
    (an id, which never wraps, whole)."""
    options = out.options.update(width=UNBOUNDED)  # a measure is clamped to the width given
    if Measurement.get(out, options, made).maximum <= width:
        return True
    needed = 1 + 3 * len(made.columns)  # borders and padding (1 + "│ " / " " per column)
    for column in made.columns:
        least = min(len(_plain(column.header)), HEADER_READABLE)
        for cell in column.cells:
            least = max(least, Measurement.get(out, options, cell).minimum)
        needed += least
    return needed <= width


def _plain(cell: Any) -> str:
    """The text of a cell (a string, a ``Text``, or anything else by its ``str``)."""
    if isinstance(cell, Text):
        return cell.plain
    return str(cell)


def print_json(value: Any) -> None:
    console.print_json(json.dumps(value, default=str))
