"""A table too wide for the terminal is shown as one block of ``column: value`` lines per
row, every value whole; one that fits stays a table."""

from __future__ import annotations

import io

import pytest
from rich.console import Console

from gristmill.cli.tables import print_table, table

BATCH = "01M8ZC4FG14HFSJMKXM980A0H5"


def shown(columns: int, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("COLUMNS", str(columns))
    out = Console(file=io.StringIO(), width=160, markup=False)  # piped: 160 unless COLUMNS
    made = table("batch", "source", "rows", "created", ids=("batch",), title="ingested")
    made.add_row(BATCH, "weather_stations", "1,024", "2026-12-04 01:54")
    made.add_row("01M8ZC4FFYSJ70VWHYE6T55XVX", "users", "3", "2026-12-04 01:55")
    print_table(made, out)
    text = out.file.getvalue()  # type: ignore[attr-defined]
    return str(text)


def test_a_table_too_wide_becomes_one_block_per_row(monkeypatch: pytest.MonkeyPatch) -> None:
    text = shown(40, monkeypatch)
    # before: the other columns squeezed to a letter or none beside the id
    assert text.splitlines() == [
        "ingested",
        f"batch:   {BATCH}",
        "source:  weather_stations",
        "rows:    1,024",
        "created: 2026-12-04 01:54",
        "",
        "batch:   01M8ZC4FFYSJ70VWHYE6T55XVX",
        "source:  users",
        "rows:    3",
        "created: 2026-12-04 01:55",
    ]


def test_a_table_that_fits_stays_a_table(monkeypatch: pytest.MonkeyPatch) -> None:
    text = shown(100, monkeypatch)
    assert "┃ batch" in text and BATCH in text and "weather_stations" in text
    assert max(len(line) for line in text.splitlines()) <= 100
