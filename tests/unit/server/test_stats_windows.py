"""A server's serving stats per version and minute: counted beside the metrics, recorded in a
real SQLite metadata store off the event loop, kept when a record fails, never counted twice.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from gristmill.backends.sql.metadata import SqlMetadataStore
from gristmill.server.metrics import Metrics
from gristmill.server.stats_flush import StatsFlusher
from gristmill.server.stats_windows import StatsWindows, replica_id, steady_clock
from gristmill.stores.serving_stats import LATENCY_BUCKETS
from gristmill.testing.metadata_records import T0

START = T0.replace(second=0, microsecond=0).timestamp()


class Clock:
    """Seconds a test moves by hand."""

    def __init__(self, now: float = START) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def store(tmp_path: Path) -> Iterator[SqlMetadataStore]:
    with SqlMetadataStore(f"sqlite:///{tmp_path}/meta.db") as opened:
        yield opened


def _windows(clock: Clock) -> tuple[Metrics, StatsWindows]:
    windows = StatsWindows("host-1-aa", clock)
    return Metrics(windows), windows


def test_metrics_feed_the_windows_per_version_and_minute(store: SqlMetadataStore) -> None:
    clock = Clock()
    metrics, windows = _windows(clock)
    metrics.answered("churn", 2, rows=3, seconds=0.002)
    metrics.failed("churn", 2, 0.004, 500)
    metrics.failed("churn", 2, 0.001, 400)
    metrics.fell_back("churn", 2)
    metrics.cache_hit("churn", 2)
    metrics.failed("", "", 0.001, 404)  # no version was found: not a version's figure
    clock.now += 60
    metrics.answered("churn", 2, rows=1, seconds=3.0)
    metrics.answered("churn", 1, rows=1, seconds=0.0001)
    copies = windows.pending()
    assert len(copies) == 3
    store.serving_stats.record([w for _, _, w in copies])
    first = store.serving_stats.list_windows("churn", 2, since=T0)[0]
    assert (first.requests, first.errors, first.client_errors) == (3, 1, 1)
    assert (first.fallbacks, first.cache_hits, first.rows) == (1, 1, 3)
    assert (first.latency_min, first.latency_max) == (0.001, 0.004)
    assert first.latency_sum == pytest.approx(0.007)
    assert first.latency_buckets[LATENCY_BUCKETS.index(0.0025)] == 1  # 2 ms
    assert first.latency_buckets[LATENCY_BUCKETS.index(0.005)] == 1  # 4 ms
    assert first.replica == "host-1-aa"
    stats = store.serving_stats.stats("churn", 2, since=T0)
    assert (stats.requests, stats.answered, stats.latency_max) == (4, 2, 3.0)
    assert stats.latency_buckets[-1] == 1  # above the last bound
    assert "gristmill_requests_total" in metrics.render()


def test_budget_misses_feed_the_windows_and_an_overtaken_request_counts(
    store: SqlMetadataStore,
) -> None:
    clock = Clock()
    metrics, windows = _windows(clock)
    # overtaken at its budget: a request of the version (untimed), a miss and a fallback
    metrics.budget_missed("churn", 2, revision=4, overtaken=True)
    metrics.fell_back("churn", 2, revision=4)
    # answered, but late (the last of its chain): a request timed, and a miss
    metrics.answered("churn", 2, rows=1, seconds=0.3, revision=4)
    metrics.budget_missed("churn", 2, revision=4)
    metrics.answered("churn", 2, rows=1, seconds=0.001, revision=4)
    store.serving_stats.record([w for _, _, w in windows.pending()])
    stats = store.serving_stats.stats("churn", 2, since=T0, min_revision=4)
    assert (stats.requests, stats.budget_misses, stats.fallbacks) == (3, 2, 1)
    assert stats.miss_rate == pytest.approx(2 / 3)
    assert sum(stats.latency_buckets) == 2  # the overtaken request had no latency
    labels = f'model_name="churn",model_version="2",process="{os.getpid()}"'
    text = metrics.render()
    assert f"gristmill_requests_total{{{labels}}} 3" in text
    assert f"gristmill_latency_budget_misses_total{{{labels}}} 2" in text


def test_recorded_windows_older_than_the_minute_before_are_let_go() -> None:
    clock = Clock()
    metrics, windows = _windows(clock)
    metrics.answered("churn", 2, 1, 0.001)
    windows.recorded(windows.pending())
    assert len(windows) == 1 and windows.pending() == []  # this minute: kept, unchanged
    clock.now += 60
    windows.recorded(windows.pending())
    assert len(windows) == 1  # the minute before: kept for the min/max gauges
    clock.now += 60
    windows.recorded(windows.pending())
    assert len(windows) == 0


def _gauges(text: str) -> dict[str, str]:
    """The min/max gauges' samples of ``text``, by series."""
    return {
        key: value
        for key, value in (line.rsplit(" ", 1) for line in text.splitlines() if line[0] != "#")
        if "latency_min_seconds" in key or "latency_max_seconds" in key
    }


def test_min_max_gauges_cover_this_minute_and_the_one_before() -> None:
    clock = Clock()
    metrics, windows = _windows(clock)
    labels = f'model_name="churn",model_version="2",process="{os.getpid()}"'
    metrics.answered("churn", 2, 1, 0.5, revision=3)
    metrics.failed("churn", 2, 0.002, 500)
    metrics.answered("churn", 1, 1, 0.004)
    clock.now += 60
    metrics.answered("churn", 2, 1, 0.03)
    windows.recorded(windows.pending())
    assert _gauges(metrics.render()) == {
        f"gristmill_request_latency_min_seconds{{{labels}}}": "0.002",
        f"gristmill_request_latency_max_seconds{{{labels}}}": "0.5",
        f"gristmill_request_latency_min_seconds{{{labels.replace('2', '1', 1)}}}": "0.004",
        f"gristmill_request_latency_max_seconds{{{labels.replace('2', '1', 1)}}}": "0.004",
    }
    clock.now += 60  # the first minute slides out: version 1 served nothing since
    assert _gauges(metrics.render()) == {
        f"gristmill_request_latency_min_seconds{{{labels}}}": "0.03",
        f"gristmill_request_latency_max_seconds{{{labels}}}": "0.03",
    }
    clock.now += 60
    assert _gauges(metrics.render()) == {}
    assert "# TYPE gristmill_request_latency_max_seconds gauge" in metrics.render()


def test_a_window_changed_while_it_was_recorded_is_recorded_again() -> None:
    clock = Clock()
    metrics, windows = _windows(clock)
    metrics.answered("churn", 2, 1, 0.001)
    copies = windows.pending()
    metrics.answered("churn", 2, 1, 0.001)  # arrives while the copy is being written
    clock.now += 60
    windows.recorded(copies)
    [(_, _, again)] = windows.pending()
    assert again.requests == 2


async def test_a_failed_flush_keeps_its_figures_and_counts_nothing_twice(
    store: SqlMetadataStore, tmp_path: Path
) -> None:
    clock = Clock()
    metrics, windows = _windows(clock)
    flusher = StatsFlusher(windows, store.serving_stats)
    for _ in range(5):
        metrics.answered("churn", 2, 1, 0.001)
    assert await flusher.flush() == 1
    assert await flusher.flush() == 0  # nothing changed since
    metrics.answered("churn", 2, 1, 0.001)
    store.close()  # the database is gone for a while
    with pytest.raises(Exception, match="not open"):
        await flusher.flush()
    metrics.failed("churn", 2, 0.001, 503)
    clock.now += 60
    metrics.answered("churn", 2, 1, 0.001)
    store.open()
    assert await flusher.flush() == 2
    stats = store.serving_stats.stats("churn", 2, since=T0)
    assert (stats.requests, stats.errors) == (8, 1)
    assert len(windows) == 2  # this minute and the one before are kept
    clock.now += 60
    assert await flusher.flush() == 0
    assert len(windows) == 1  # the minute before the one before is let go


async def test_the_flusher_records_on_its_interval_and_once_at_stop(
    store: SqlMetadataStore,
) -> None:
    metrics, windows = _windows(Clock())
    flusher = StatsFlusher(windows, store.serving_stats)
    judged = asyncio.Event()

    async def after() -> None:
        judged.set()

    metrics.answered("churn", 2, 1, 0.001)
    flusher.start(0.01, after)
    await asyncio.wait_for(judged.wait(), 10)
    assert store.serving_stats.stats("churn", 2, since=T0).requests == 1
    metrics.answered("churn", 2, 1, 0.001)
    await flusher.stop()
    assert store.serving_stats.stats("churn", 2, since=T0).requests == 2


def test_replica_ids_differ_and_the_clock_never_steps_back() -> None:
    assert replica_id() != replica_id()
    clock = steady_clock()
    readings = [clock() for _ in range(1000)]
    assert readings == sorted(readings)
