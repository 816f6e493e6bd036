"""``gristmill feedback FILE``: a file's outcomes checked whole, then published as
``feedback.received`` events the feedback stage reads; a bad row is named and stops all."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from gristmill.backends.sqlite.bus import SqliteBus
from gristmill.config.settings import load_settings
from gristmill.core.events import FEEDBACK_RECEIVED, Event
from gristmill.runtime.wiring import open_stores
from gristmill.stages.feedback import outcomes_of
from gristmill.testing.cli import run_cli_here
from gristmill.testing.metadata_records import make_candidate


def _sent(home: Path) -> list[Event]:
    if not (home / "bus.db").exists():
        return []

    async def read() -> list[Event]:
        bus = SqliteBus(str(home / "bus.db"), namespace="gristmill")
        await bus.open()
        try:
            got = await bus.consume("probe", FEEDBACK_RECEIVED, "p", max_events=100, wait=0.2)
            return [d.event for d in got]
        finally:
            await bus.close()

    return asyncio.run(read())


def _register(home: Path, model: str) -> None:
    """``model``/1 in ``home``'s registry (a candidate never trained: only its name counts)."""
    settings = load_settings(overrides={"home": str(home)})
    with open_stores(settings) as stores:
        stores.metadata.candidates.save_candidate(make_candidate("mc_1", split_id="none"))
        candidate = stores.metadata.candidates.get_candidate("mc_1")
        stores.metadata.registry.register_version(model, candidate)


def _gm(tmp_path: Path, monkeypatch: Any, capsys: Any, *args: str) -> tuple[int, str, str]:
    home = ("--home", str(tmp_path / "home"))
    return run_cli_here(*home, *args, cwd=tmp_path, monkeypatch=monkeypatch, capsys=capsys)


def test_a_csv_of_request_ids_is_sent_in_parts(
    tmp_path: Path, monkeypatch: Any, capsys: Any
) -> None:
    lines = ["request_id,row,actual"] + [f"0042,{i % 3},{i % 2}" for i in range(5)]
    (tmp_path / "labels.csv").write_text("\n".join(lines) + "\n")
    code, out, err = _gm(
        tmp_path, monkeypatch, capsys, "feedback", "labels.csv", "--per-message", "2"
    )
    assert code == 0, err
    assert "sent 5 outcome(s) in 3 feedback.received event(s)" in out
    events = _sent(tmp_path / "home")
    assert [len(e.payload["outcomes"]) for e in events] == [2, 2, 1]
    outcomes = [o for e in events for o in outcomes_of(e)]
    assert outcomes[0].request_id == "0042"  # ids stay text, leading zeros and all
    assert [(o.row, o.actual) for o in outcomes] == [(i % 3, i % 2) for i in range(5)]


def test_entities_from_parquet_need_the_model(
    tmp_path: Path, monkeypatch: Any, capsys: Any
) -> None:
    table = pa.table(
        {"entity": ["c1", "c2"], "at": ["2026-12-01T10:00:00Z", None], "actual": ["yes", "no"]}
    )
    pq.write_table(table, tmp_path / "churned.parquet")
    code, _, err = _gm(tmp_path, monkeypatch, capsys, "feedback", "churned.parquet")
    assert code == 1 and "give the model" in err
    code, _, err = _gm(
        tmp_path, monkeypatch, capsys, "feedback", "churned.parquet", "--model", "churn"
    )
    assert code == 1 and "no model named 'churn' in the registry" in " ".join(err.split())
    assert "gristmill models" in err and not _sent(tmp_path / "home")
    _register(tmp_path / "home", "churn")
    code, _, err = _gm(
        tmp_path, monkeypatch, capsys, "feedback", "churned.parquet", "--model", "churn"
    )
    assert code == 0, err
    [event] = _sent(tmp_path / "home")
    assert event.key == "churn" and event.payload["model"] == "churn"
    first, second = outcomes_of(event)
    assert (first.entity, first.actual, second.entity) == ("c1", "yes", "c2")
    assert second.entity_at == event.occurred_at  # no time: when it was received


def test_a_bad_row_is_named_and_nothing_is_sent(
    tmp_path: Path, monkeypatch: Any, capsys: Any
) -> None:
    (tmp_path / "labels.csv").write_text("request_id,actual\na,1\nb,\n")
    code, _, err = _gm(tmp_path, monkeypatch, capsys, "feedback", "labels.csv")
    assert code == 1
    assert "labels.csv, row 2, column actual" in err, err
    (tmp_path / "typo.csv").write_text("request_id,actuals\na,1\n")
    code, _, err = _gm(tmp_path, monkeypatch, capsys, "feedback", "typo.csv")
    assert code == 1 and "unknown column 'actuals'" in err
    assert _sent(tmp_path / "home") == []
