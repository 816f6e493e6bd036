"""The drift store's part of the metadata store contract (``DriftStore``).

``MetadataStoreContract`` inherits it, so a backend passes it by passing the metadata suite;
it reaches the store as ``store.drift``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from datetime import timedelta
from typing import Any

import pytest

from gristmill.stores.drift import DriftAlert, DriftWindow, TakenFile, window_of
from gristmill.stores.metadata import MetadataStore
from gristmill.testing.metadata_records import T0, assert_utc, at, run_together

HOUR = 3600
START = window_of(T0, HOUR)


def make_drift_window(hour: int = 0, version: int = 2, **changes: Any) -> DriftWindow:
    """Window ``hour`` hours after the suite's first of ``churn``/``version``, first written:
    40 rows of one file, column ``age`` counted and judged."""
    window = DriftWindow(
        model="churn",
        version=version,
        window_seconds=HOUR,
        window_start=START + timedelta(hours=hour),
        rows=40,
        files=1,
        counts={"age": {"bins": [10, 30], "missing": 0}},
        results={"age": {"psi": 0.5, "drifted": True}},
        alerted=["age"],
        revision=1,
        updated_at=at(1),
    )
    return replace(window, **changes)


def make_taken(file: str = "/log/a.parquet", version: int = 2, **changes: Any) -> TakenFile:
    taken = TakenFile(
        model="churn",
        version=version,
        file=file,
        rows=40,
        taken_at=at(1),
        windows=[START.isoformat()],
        execution_id="ex-1",
    )
    return replace(taken, **changes)


def make_alert(column: str = "age", hour: int = 0, **changes: Any) -> DriftAlert:
    alert = DriftAlert(
        alert_id=f"da-{column}-{hour}",
        model="churn",
        version=2,
        window_seconds=HOUR,
        window_start=START + timedelta(hours=hour),
        column=column,
        method="psi",
        statistic=0.5,
        threshold=0.2,
        rows=40,
        raised_at=at(1),
        file="/log/a.parquet",
    )
    return replace(alert, **changes)


class DriftStoreContract:
    """Files taken once, windows written over the revision they were read at, alerts once."""

    __test__ = False

    def test_nothing_recorded_finds_nothing(self, store: MetadataStore) -> None:
        assert store.drift.find_window("churn", 2, HOUR, START) is None
        assert store.drift.find_file("churn", 2, "/log/a.parquet") is None
        assert store.drift.list_windows("churn", since=T0) == []
        assert store.drift.list_alerts("churn") == []

    def test_a_taken_file_round_trips_with_its_windows_and_alerts(
        self, store: MetadataStore
    ) -> None:
        window, taken, alert = make_drift_window(), make_taken(), make_alert()
        assert store.drift.take_file(taken, [window], [alert]) == "taken"
        got = store.drift.find_window("churn", 2, HOUR, START)
        assert got == window
        assert got is not None and got.window_end == START + timedelta(hours=1)
        assert_utc(got.window_start)
        assert store.drift.find_file("churn", 2, "/log/a.parquet") == taken
        assert store.drift.list_alerts("churn") == [alert]

    def test_a_file_is_taken_once(self, store: MetadataStore) -> None:
        assert store.drift.take_file(make_taken(), [make_drift_window()], []) == "taken"
        again = make_drift_window(rows=80, files=2, revision=2)
        assert store.drift.take_file(make_taken(), [again], [make_alert()]) == "seen"
        stored = store.drift.find_window("churn", 2, HOUR, START)
        assert stored is not None and (stored.rows, stored.revision) == (40, 1)
        assert store.drift.list_alerts("churn") == []  # nothing of the refused take

    def test_a_window_changed_since_it_was_read_refuses_the_whole_take(
        self, store: MetadataStore
    ) -> None:
        assert store.drift.take_file(make_taken(), [make_drift_window()], []) == "taken"
        # read at revision 0 (none stored), but the window exists now
        late = make_taken("/log/b.parquet")
        assert store.drift.take_file(late, [make_drift_window()], [make_alert()]) == "conflict"
        # read at revision 1, but another file made it 2 first
        second = make_drift_window(rows=80, files=2, revision=2)
        assert store.drift.take_file(make_taken("/log/c.parquet"), [second], []) == "taken"
        stale = make_drift_window(rows=80, files=2, revision=2)
        other = make_drift_window(hour=1)  # a window of its own, fine by itself
        assert store.drift.take_file(late, [other, stale], []) == "conflict"
        # nothing of the refused takes was kept: not the file, not the other window
        assert store.drift.find_file("churn", 2, "/log/b.parquet") is None
        assert store.drift.find_window("churn", 2, HOUR, START + timedelta(hours=1)) is None
        assert store.drift.list_alerts("churn") == []
        stored = store.drift.find_window("churn", 2, HOUR, START)
        assert stored is not None and (stored.rows, stored.files, stored.revision) == (80, 2, 2)

    def test_an_alert_is_kept_once_per_version_window_and_column(
        self, store: MetadataStore
    ) -> None:
        first = make_alert()
        store.drift.take_file(make_taken(), [make_drift_window()], [first])
        again = make_alert(alert_id="da-other", statistic=0.9, file="/log/b.parquet")
        second_window = make_drift_window(rows=80, revision=2)
        taken = store.drift.take_file(make_taken("/log/b.parquet"), [second_window], [again])
        assert taken == "taken"
        assert store.drift.list_alerts("churn") == [first]

    def test_windows_are_listed_by_end_version_and_length(self, store: MetadataStore) -> None:
        store.drift.take_file(
            make_taken(),
            [
                make_drift_window(hour=2),
                make_drift_window(hour=0),
                make_drift_window(hour=1, version=3),
                make_drift_window(hour=1),
                make_drift_window(window_seconds=60, window_start=START),
            ],
            [],
        )
        listed = store.drift.list_windows("churn", since=T0, window_seconds=HOUR)
        assert [(w.window_start - START, w.version) for w in listed] == [
            (timedelta(0), 2),
            (timedelta(hours=1), 2),
            (timedelta(hours=1), 3),
            (timedelta(hours=2), 2),
        ]
        # "ends after since": the window holding since counts, earlier ones do not
        later = store.drift.list_windows("churn", 2, since=START + timedelta(minutes=90))
        assert [w.window_start - START for w in later] == [timedelta(hours=1), timedelta(hours=2)]
        minutes = store.drift.list_windows("churn", since=T0, window_seconds=60)
        assert [w.window_seconds for w in minutes] == [60]
        assert store.drift.list_windows("fraud", since=T0) == []

    def test_alerts_are_listed_by_version_time_and_file(self, store: MetadataStore) -> None:
        alerts = [
            make_alert("age", raised_at=at(10)),
            make_alert("plan", raised_at=at(20), file="/log/b.parquet"),
            make_alert("age", hour=1, raised_at=at(30)),
            make_alert("age", version=3, alert_id="da-3", raised_at=at(40)),
        ]
        store.drift.take_file(make_taken(), [make_drift_window()], alerts)
        assert [a.alert_id for a in store.drift.list_alerts("churn")] == [
            "da-age-0",
            "da-plan-0",
            "da-3",
            "da-age-1",
        ]
        assert [a.alert_id for a in store.drift.list_alerts("churn", 3)] == ["da-3"]
        since = [a.alert_id for a in store.drift.list_alerts("churn", 2, since=at(20))]
        assert since == ["da-plan-0", "da-age-1"]
        by_file = store.drift.list_alerts("churn", file="/log/b.parquet")
        assert [a.alert_id for a in by_file] == ["da-plan-0"]

    def test_notified_alerts_keep_their_first_mark(self, store: MetadataStore) -> None:
        store.drift.take_file(
            make_taken(), [make_drift_window()], [make_alert("age"), make_alert("plan")]
        )
        store.drift.mark_notified(["da-age-0"], at(50))
        store.drift.mark_notified(["da-age-0", "da-plan-0"], at(60))
        store.drift.mark_notified([], at(70))
        marks = {a.column: a.notified_at for a in store.drift.list_alerts("churn")}
        assert marks == {"age": at(50), "plan": at(60)}

    def test_a_window_start_off_its_grid_is_refused(self, store: MetadataStore) -> None:
        with pytest.raises(ValueError, match="window_of"):
            store.drift.take_file(make_taken(), [make_drift_window(window_start=T0)], [])
        with pytest.raises(ValueError, match="window_of"):
            store.drift.find_window("churn", 2, HOUR, START + timedelta(minutes=5))
        with pytest.raises(ValueError, match="revision"):
            store.drift.take_file(make_taken(), [make_drift_window(revision=0)], [])
        assert store.drift.find_file("churn", 2, "/log/a.parquet") is None

    def test_writers_racing_for_one_window_lose_no_file(self, store: MetadataStore) -> None:
        writers, files = 4, 5

        def take(index: int) -> int:
            conflicts = 0
            for number in range(files):
                taken = make_taken(f"/log/{index}-{number}.parquet", rows=10)
                while True:
                    stored = store.drift.find_window("churn", 2, HOUR, START)
                    base = stored or make_drift_window(rows=0, files=0, revision=0)
                    window = replace(
                        base, rows=base.rows + 10, files=base.files + 1, revision=base.revision + 1
                    )
                    outcome = store.drift.take_file(taken, [window], [])
                    if outcome == "taken":
                        break
                    assert outcome == "conflict"
                    conflicts += 1
            return conflicts

        run_together(writers, take)
        stored = store.drift.find_window("churn", 2, HOUR, START)
        assert stored is not None
        assert (stored.rows, stored.files) == (writers * files * 10, writers * files)
        assert stored.revision == writers * files

    def test_windows_outlive_the_store(
        self, store: MetadataStore, store_factory: Callable[[], MetadataStore]
    ) -> None:
        store.drift.take_file(make_taken(), [make_drift_window()], [make_alert()])
        store.close()
        again = store_factory()
        again.open()
        try:
            assert again.drift.find_window("churn", 2, HOUR, START) == make_drift_window()
            assert len(again.drift.list_alerts("churn")) == 1
        finally:
            again.close()
