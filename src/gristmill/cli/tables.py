"""How the inspecting verbs print: tables whose ids stay whole, times, JSON."""

from __future__ import annotations

import json
from typing import Any

from rich.console import OverflowMethod
from rich.table import Table

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


def print_json(value: Any) -> None:
    console.print_json(json.dumps(value, default=str))
