"""How the inspecting verbs print: tables whose ids stay whole, times, JSON."""

from __future__ import annotations

import json
from typing import Any

from rich.table import Table

from gristmill.cli.console import console

RIGHT_ALIGNED = ("rows", "columns", "bad rows", "seconds")


def when(value: Any) -> str:
    """A time to the minute, or ``-``."""
    return value.strftime("%Y-%m-%d %H:%M") if value else "-"


def table(*columns: str, ids: tuple[str, ...] = (), **options: Any) -> Table:
    """A table whose id columns never wrap or get cut (ids must be copyable)."""
    made = Table(**options)
    for column in columns:
        right = column in RIGHT_ALIGNED
        made.add_column(column, no_wrap=column in ids, justify="right" if right else "left")
    return made


def print_json(value: Any) -> None:
    console.print_json(json.dumps(value, default=str))
