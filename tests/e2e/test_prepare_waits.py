"""``gristmill prepare`` with a feature set joining a source not ingested yet: a clear error
naming the source and the command that ingests it; the other sets are prepared all the same."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from gristmill.config.settings import load_settings
from gristmill.ingestion.stream import MicroBatcher
from gristmill.runtime.wiring import open_services
from gristmill.testing.cli import run_cli_here

SPEC = """\
name: shop
sources:
  users: {format: csv, path: data/users.csv}
  orders: {format: csv, path: data/orders.csv}
features:
  users_only:
    from: [users]
  users_orders:
    from: [users, orders]
    join: {on: user_id, timestamp: ts}
"""


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "users.csv").write_text(
        "user_id,ts,age\n1,2024-01-01,30\n2,2024-01-02,40\n3,2024-01-03,50\n"
    )
    (tmp_path / "data" / "orders.csv").write_text(
        "user_id,ts,amount\n1,2024-01-01,10\n2,2024-01-02,20\n"
    )
    (tmp_path / "pipeline.yaml").write_text(SPEC)
    return tmp_path


def gm(folder: Path, *args: str, fixtures: dict[str, Any]) -> tuple[int, str, str]:
    code, out, err = run_cli_here(*args, cwd=folder, **fixtures)
    return code, out, " ".join(err.split())


def test_a_join_waiting_for_a_source_names_it_and_the_rest_is_prepared(
    folder: Path, monkeypatch: pytest.MonkeyPatch, capsys: Any
) -> None:
    fixtures = {"monkeypatch": monkeypatch, "capsys": capsys}
    assert gm(folder, "ingest", "users", "--spec", "pipeline.yaml", fixtures=fixtures)[0] == 0
    # Before: exit 2 and no table, though users_only had been prepared ("needs batches of
    # orders; ingest them first").
    code, out, err = gm(folder, "prepare", "pipeline.yaml", fixtures=fixtures)
    assert code == 1 and "Traceback" not in err
    assert "users_only" in out and "users_orders" not in out
    assert (
        "error: feature set 'users_orders' was not prepared: it joins 'users' and 'orders' "
        "(a join waits for every input), and 'orders' has not been ingested yet" in err
    )
    assert (
        "ingest it first, then prepare again: gristmill ingest orders --spec pipeline.yaml" in err
    )

    assert gm(folder, "ingest", "orders", "--spec", "pipeline.yaml", fixtures=fixtures)[0] == 0
    code, out, err = gm(folder, "prepare", "pipeline.yaml", "-f", "users_orders", fixtures=fixtures)
    assert code == 0, err
    assert "users_orders" in out and err == ""


def test_sources_never_ingested_or_only_streamed_are_told_apart(
    folder: Path, monkeypatch: pytest.MonkeyPatch, capsys: Any
) -> None:
    async def stream_orders() -> None:
        settings = load_settings(None, {"home": str(folder / ".gristmill")})
        async with open_services(settings) as services:
            batcher = MicroBatcher(
                "orders", services.raw, services.metadata, max_rows=10, max_seconds=1
            )
            batcher.add([{"user_id": 1, "ts": "2024-01-05", "amount": 5}])
            assert len(batcher.flush()) == 1

    asyncio.run(stream_orders())
    fixtures = {"monkeypatch": monkeypatch, "capsys": capsys}
    code, out, err = gm(folder, "prepare", "pipeline.yaml", fixtures=fixtures)
    assert code == 1 and out == "" and "Traceback" not in err
    assert "feature set 'users_only' was not prepared: 'users' has not been ingested yet" in err
    assert "and 'users' has not been ingested yet; 'orders' has only streamed micro-batches" in err
    assert (
        "ingest them first, then prepare again: gristmill ingest users --spec pipeline.yaml; "
        "gristmill ingest orders --spec pipeline.yaml" in err
    )
