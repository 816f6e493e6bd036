"""The serving stats' part of the metadata store contract (``ServingStatsStore``).

``MetadataStoreContract`` inherits it, so a backend passes it by passing the metadata suite;
it reaches the store as ``store.serving_stats``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from datetime import timedelta

import pytest

from gristmill.stores.metadata import MetadataStore
from gristmill.stores.serving_stats import (
    LATENCY_BUCKETS,
    ServingWindow,
    empty_buckets,
    window_start,
)
from gristmill.testing.metadata_records import T0, assert_utc, run_together

MINUTE = window_start(T0)


def make_window(
    replica: str = "host-1-aa", minute: int = 0, version: int = 2, **changes: object
) -> ServingWindow:
    """A window of ``churn``/``version`` at ``minute`` minutes after the suite's first one:
    10 requests, one server error, one fallback, two latency budget misses, latencies 1 ms
    (6 of them) and 20 ms (4)."""
    buckets = list(empty_buckets())
    buckets[LATENCY_BUCKETS.index(0.001)] = 6
    buckets[LATENCY_BUCKETS.index(0.025)] = 4
    window = ServingWindow(
        model="churn",
        version=version,
        replica=replica,
        window_start=MINUTE + timedelta(minutes=minute),
        requests=10,
        errors=1,
        client_errors=2,
        fallbacks=1,
        budget_misses=2,
        cache_hits=3,
        rows=12,
        latency_sum=0.086,
        latency_min=0.001,
        latency_max=0.02,
        latency_buckets=tuple(buckets),
        updated_at=T0,
    )
    return replace(window, **changes)  # type: ignore[arg-type]


class ServingStatsContract:
    """Windows recorded per replica and minute, replaced when recorded again, summed."""

    __test__ = False

    def test_nothing_recorded_sums_to_zeros(self, store: MetadataStore) -> None:
        stats = store.serving_stats.stats("churn", 2, since=T0)
        assert (stats.model, stats.version, stats.since) == ("churn", 2, T0)
        assert (stats.requests, stats.errors, stats.replicas) == (0, 0, 0)
        assert stats.latency_quantile(0.5) is None
        assert store.serving_stats.list_windows("churn", since=T0) == []

    def test_a_window_round_trips(self, store: MetadataStore) -> None:
        window = make_window()
        store.serving_stats.record([window])
        [got] = store.serving_stats.list_windows("churn", 2, since=T0)
        assert got == window
        assert_utc(got.window_start)

    def test_windows_sum_over_replicas_and_minutes(self, store: MetadataStore) -> None:
        store.serving_stats.record([make_window("a"), make_window("a", minute=1)])
        store.serving_stats.record(
            [make_window("b", minute=1, latency_min=0.0004, latency_max=0.3, errors=0)]
        )
        store.serving_stats.record([make_window("a", version=3)])  # another version
        stats = store.serving_stats.stats("churn", 2, since=T0)
        assert (stats.requests, stats.errors, stats.client_errors) == (30, 2, 6)
        assert (stats.fallbacks, stats.cache_hits, stats.rows) == (3, 9, 36)
        assert stats.budget_misses == 6
        assert (stats.miss_rate, stats.error_rate) == (6 / 30, 2 / 30)
        assert stats.answered == 30 - 2 - 6
        assert stats.latency_sum == pytest.approx(3 * 0.086)
        assert (stats.latency_min, stats.latency_max) == (0.0004, 0.3)
        assert stats.latency_buckets[LATENCY_BUCKETS.index(0.001)] == 18
        assert stats.latency_buckets[LATENCY_BUCKETS.index(0.025)] == 12
        assert stats.replicas == 2
        # 60 % of the latencies are at most 1 ms; the 90th percentile is in (10, 25] ms
        assert stats.latency_quantile(0.5) == pytest.approx(0.0005 + 0.0005 * 15 / 18)
        p90 = stats.latency_quantile(0.9)
        assert p90 is not None and 0.01 < p90 <= 0.025

    def test_only_windows_from_the_minute_of_since_on_count(self, store: MetadataStore) -> None:
        store.serving_stats.record([make_window(minute=m) for m in range(3)])
        half_past = MINUTE + timedelta(minutes=1, seconds=30)
        assert store.serving_stats.stats("churn", 2, since=half_past).requests == 20
        windows = store.serving_stats.list_windows("churn", since=half_past)
        assert [w.window_start for w in windows] == [
            MINUTE + timedelta(minutes=1),
            MINUTE + timedelta(minutes=2),
        ]

    def test_recording_a_window_again_replaces_it(self, store: MetadataStore) -> None:
        # a replica records running totals: a retried or repeated record never adds twice
        store.serving_stats.record([make_window()])
        store.serving_stats.record([make_window()])
        assert store.serving_stats.stats("churn", 2, since=T0).requests == 10
        store.serving_stats.record([make_window(requests=25, errors=0)])
        stats = store.serving_stats.stats("churn", 2, since=T0)
        assert (stats.requests, stats.errors) == (25, 0)
        assert len(store.serving_stats.list_windows("churn", 2, since=T0)) == 1

    def test_windows_of_other_revisions_are_apart_and_can_be_left_out(
        self, store: MetadataStore
    ) -> None:
        # the same replica, version and minute: requests named by version (revision 0), sent
        # by policy revision 4, then by revision 5
        store.serving_stats.record([make_window(revision=r, errors=0) for r in (0, 4, 5)])
        store.serving_stats.record([make_window("b", revision=3)])
        assert len(store.serving_stats.list_windows("churn", 2, since=T0)) == 4
        assert store.serving_stats.stats("churn", 2, since=T0).requests == 40
        from_four = store.serving_stats.stats("churn", 2, since=T0, min_revision=4)
        assert (from_four.requests, from_four.errors, from_four.replicas) == (20, 0, 1)
        assert from_four.min_revision == 4

    def test_windows_are_listed_by_minute_version_and_replica(self, store: MetadataStore) -> None:
        recorded = [
            make_window("b", minute=1),
            make_window("a", minute=1, version=3),
            make_window("a", minute=1),
            make_window("b", minute=0),
        ]
        store.serving_stats.record(recorded)
        listed = store.serving_stats.list_windows("churn", since=T0)
        keys = [(w.window_start.minute - MINUTE.minute, w.version, w.replica) for w in listed]
        assert keys == [(0, 2, "b"), (1, 2, "a"), (1, 2, "b"), (1, 3, "a")]
        assert [w.version for w in store.serving_stats.list_windows("churn", 3, since=T0)] == [3]

    def test_a_window_that_is_not_a_whole_minute_is_refused(self, store: MetadataStore) -> None:
        with pytest.raises(ValueError, match="whole minute"):
            store.serving_stats.record([make_window(window_start=T0)])
        with pytest.raises(ValueError, match="whole minute"):  # all or none
            store.serving_stats.record([make_window("ok"), make_window(window_start=T0)])
        assert store.serving_stats.list_windows("churn", since=T0) == []

    def test_replicas_record_at_once_without_losing_any(self, store: MetadataStore) -> None:
        replicas = 6

        def flush(i: int) -> None:
            for minute in range(3):
                store.serving_stats.record([make_window(f"r{i}", minute=minute)])

        run_together(replicas, flush)
        stats = store.serving_stats.stats("churn", 2, since=T0)
        assert (stats.requests, stats.replicas) == (replicas * 3 * 10, replicas)

    def test_windows_outlive_the_store(
        self, store: MetadataStore, store_factory: Callable[[], MetadataStore]
    ) -> None:
        store.serving_stats.record([make_window()])
        store.close()
        again = store_factory()
        again.open()
        try:
            assert again.serving_stats.stats("churn", 2, since=T0).requests == 10
        finally:
            again.close()

    def test_prune_removes_the_windows_before_the_minute_of_before(
        self, store: MetadataStore
    ) -> None:
        stats = store.serving_stats
        stats.record([make_window(minute=m) for m in range(4)])
        stats.record([make_window("b", minute=1, version=3), make_window(minute=0, model="fraud")])
        half_past_two = MINUTE + timedelta(minutes=2, seconds=30)
        # minutes 0 and 1 of every model, version and replica; minute 2 holds `before`: kept
        assert stats.prune(half_past_two, dry_run=True) == 4
        assert len(stats.list_windows("churn", since=T0)) == 5  # a dry run removes nothing
        assert stats.prune(half_past_two) == 4
        assert [w.window_start for w in stats.list_windows("churn", since=T0)] == [
            MINUTE + timedelta(minutes=2),
            MINUTE + timedelta(minutes=3),
        ]
        assert stats.list_windows("fraud", since=T0) == []
        assert stats.prune(half_past_two) == 0  # again: nothing left to remove
        assert stats.stats("churn", 2, since=T0).requests == 20
