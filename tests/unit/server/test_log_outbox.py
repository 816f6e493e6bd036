"""The prediction log's outbox: markers kept until announced, found again by another server,
dropped when their file never came, set aside when unreadable."""

from __future__ import annotations

import time
from pathlib import Path

from gristmill.core.events import PREDICTIONS_LOGGED, Event
from gristmill.server.log_outbox import ABANDONED_AFTER, SCAN_AFTER, LogOutbox


def _event(path: Path) -> Event:
    payload = {"model": "m", "version": 1, "path": str(path), "records": 1}
    return Event(type=PREDICTIONS_LOGGED, key="m", payload=payload)


def test_markers_wait_until_done_and_only_those_of_written_files_are_announced(
    tmp_path: Path,
) -> None:
    outbox = LogOutbox(tmp_path)
    written, unwritten = tmp_path / "a.parquet", tmp_path / "b.parquet"
    written.write_bytes(b"x")
    first, second = _event(written), _event(unwritten)
    outbox.keep(first)
    outbox.keep(second)
    now = time.time()
    assert outbox.waiting(set(), now=now) == []  # too young: their server is on it
    assert outbox.waiting(set(), now=now + SCAN_AFTER + 1) == [first]
    assert outbox.waiting({first.id}, now=now + SCAN_AFTER + 1) == []
    # a file that never came: its marker is dropped once abandoned
    assert outbox.waiting(set(), now=now + ABANDONED_AFTER + 1) == [first]
    assert sorted(p.stem for p in outbox.folder.glob("*.json")) == [first.id]
    outbox.done([first, first])  # twice: another server relayed it too
    assert not list(outbox.folder.glob("*.json"))


def test_an_unreadable_marker_is_set_aside(tmp_path: Path) -> None:
    outbox = LogOutbox(tmp_path)
    outbox.folder.mkdir()
    (outbox.folder / "junk.json").write_text("{not json")
    assert outbox.waiting(set(), now=time.time() + SCAN_AFTER + 1) == []
    assert [p.name for p in outbox.folder.iterdir()] == ["junk.bad"]
