"""Materializing with the TTL counted from arrival: the newest row per entity by its event
time, stamped with the arrival; the counts say how many entities were fresh."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pyarrow as pa

from gristmill.backends.sqlite.online import SqliteOnlineStore
from gristmill.features.materialize import Materialized, materialize_counted

OLD = datetime(2019, 3, 1)
TABLE = pa.table(
    {
        "id": ["a", "a", "b", "c"],
        "ts": [OLD + timedelta(hours=5), OLD, OLD + timedelta(hours=1), OLD],
        "x": [2.0, 1.0, 3.0, 4.0],
    }
)


def put(store: SqliteOnlineStore, stamp: datetime | None, view: str) -> Materialized:
    return materialize_counted(
        store,
        view,
        TABLE,
        entity="id",
        timestamp="ts",
        features=["x"],
        ttl=86_400,
        feature_set_id="fs_1",
        pipeline="sha256:p",
        stamp=stamp,
    )


def test_from_event_times_nothing_is_fresh_and_from_arrival_everything(tmp_path: Path) -> None:
    with SqliteOnlineStore(str(tmp_path / "online.db")) as store:
        by_event = put(store, None, "by_event")
        assert by_event.written == by_event.fresh == 0
        assert by_event.entities == 3
        assert by_event.newest == (OLD + timedelta(hours=5)).replace(tzinfo=UTC)
        arrived = datetime.now(UTC) - timedelta(hours=2)
        by_arrival = put(store, arrived, "by_arrival")
        assert (by_arrival.written, by_arrival.fresh) == (3, 3)
        found = store.get("by_arrival", ["a", "b", "c"], pipeline="sha256:p")
        assert [f.vector.values["x"] for f in found if f.vector] == [2.0, 3.0, 4.0]
        assert {f.event_time for f in found} == {arrived}
        assert all(f.found for f in store.get("by_arrival", ["a"], pipeline="sha256:p"))
        assert not any(f.found for f in store.get("by_event", ["a"], pipeline="sha256:p"))
