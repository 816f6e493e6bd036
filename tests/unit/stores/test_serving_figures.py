"""Serving figures over sliding windows, checked against numbers worked out by hand; and the
percentile estimate's stated error bound, checked against the exact quantiles of samples."""

from __future__ import annotations

import math
from bisect import bisect_left
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gristmill.stores.serving_figures import SPANS, Figures, figures, per_minute, quantile_bounds
from gristmill.stores.serving_stats import (
    LATENCY_BUCKETS,
    ServingStats,
    ServingWindow,
    empty_buckets,
    summed,
)

UNTIL = datetime(2026, 5, 4, 12, 30, 20, tzinfo=UTC)
INF = math.inf


def at(hour: int, minute: int, days_before: int = 0) -> datetime:
    return datetime(2026, 5, 4 - days_before, hour, minute, tzinfo=UTC)


def buckets(counts: dict[float, int]) -> tuple[int, ...]:
    """Histogram counts by upper bound (``INF``: above the last bound)."""
    made = list(empty_buckets())
    for bound, count in counts.items():
        made[len(LATENCY_BUCKETS) if bound == INF else LATENCY_BUCKETS.index(bound)] = count
    return tuple(made)


def window(replica: str, start: datetime, **values: object) -> ServingWindow:
    fields: dict[str, object] = {"model": "churn", "version": 2, **values}
    return ServingWindow(replica=replica, window_start=start, **fields)  # type: ignore[arg-type]


# A: this minute on replica a; B: the minute before on replica b; C: the first minute of the
# hour span (exactly on its edge); D: the minute before that (in the day span only); E: the
# day span's edge minus one (in none); then another version and another model (ignored).
A = window(
    "a",
    at(12, 30),
    requests=10,
    errors=1,
    client_errors=2,
    fallbacks=1,
    cache_hits=3,
    rows=12,
    latency_sum=0.086,
    latency_min=0.0008,
    latency_max=0.02,
    latency_buckets=buckets({0.001: 6, 0.025: 4}),
)
B = window(
    "b",
    at(12, 29),
    requests=10,
    rows=10,
    latency_sum=0.5,
    latency_min=0.03,
    latency_max=0.09,
    latency_buckets=buckets({0.05: 5, 0.1: 5}),
)
C = window(
    "a",
    at(11, 30),
    requests=4,
    rows=4,
    latency_sum=8.0,
    latency_min=2.0,
    latency_max=4.0,
    latency_buckets=buckets({2.5: 2, INF: 2}),
)
D = window(
    "a",
    at(11, 29),
    requests=100,
    errors=10,
    rows=100,
    latency_sum=0.03,
    latency_min=0.0001,
    latency_max=0.0005,
    latency_buckets=buckets({0.0005: 100}),
)
E = window("a", at(12, 29, days_before=1), requests=1000, latency_buckets=buckets({1.0: 1000}))
OTHERS = [
    window("a", at(12, 30), version=3, requests=7, latency_buckets=buckets({1.0: 7})),
    window("a", at(12, 30), model="fraud", requests=9, latency_buckets=buckets({1.0: 9})),
]
WINDOWS = [E, D, C, B, A, *OTHERS]


def span_figures(label: str) -> Figures:
    [span] = [s for s in SPANS if s.label == label]
    return figures(WINDOWS, model="churn", version=2, until=UNTIL, span=span.length)


def test_the_minute_span_is_this_minute_and_the_one_before_over_every_replica() -> None:
    got = span_figures("1 min")
    assert got.since == at(12, 29) and got.seconds == 80.0  # 12:29:00 to 12:30:20
    assert (got.requests, got.errors, got.client_errors) == (20, 1, 2)
    assert (got.fallbacks, got.cache_hits, got.rows, got.replicas) == (1, 3, 22, 2)
    assert got.per_second == pytest.approx(20 / 80)
    assert got.error_rate == pytest.approx(1 / 20)
    assert got.latency_mean == pytest.approx((0.086 + 0.5) / 20)
    assert (got.latency_min, got.latency_max) == (0.0008, 0.09)
    # buckets (0.5,1] ms: 6, (10,25] ms: 4, (25,50] ms: 5, (50,100] ms: 5 — 20 in all
    # p50: rank 10 is the last of (10,25] ms: 10 + 15 * (10 - 6) / 4 = 25 ms
    # p90: rank 18 in (50,100] ms, 3 of its 5: 50 + 50 * 3 / 5 = 80 ms
    # p99: rank 19.8 in (50,100] ms: 50 + 50 * 4.8 / 5 = 98 ms, above the max seen: 90 ms
    assert (got.p50, got.p90, got.p99) == pytest.approx((0.025, 0.08, 0.09))
    assert (got.p50_bounds, got.p90_bounds, got.p99_bounds) == (
        (0.01, 0.025),
        (0.05, 0.09),  # (50,100] ms, narrowed to the max seen
        (0.05, 0.09),
    )


def test_the_hour_span_starts_at_the_minute_an_hour_ago() -> None:
    got = span_figures("1 h")
    assert got.since == at(11, 30)  # C counts, D (11:29) does not
    assert (got.requests, got.errors, got.replicas) == (24, 1, 2)
    assert got.latency_mean == pytest.approx((0.086 + 0.5 + 8.0) / 24)
    assert (got.latency_min, got.latency_max) == (0.0008, 4.0)
    # p50: rank 12 in (25,50] ms, 2 of its 5: 25 + 25 * 2 / 5 = 35 ms
    # p99: rank 23.76 is above the last bound (2.5 s): the max seen
    assert (got.p50, got.p99) == pytest.approx((0.035, 4.0))


def test_the_day_span_counts_from_the_same_minute_yesterday() -> None:
    got = span_figures("1 day")
    assert got.since == at(12, 29, days_before=1) + timedelta(minutes=1)  # E does not count
    assert got.seconds == 24 * 3600 + 20
    assert (got.requests, got.errors, got.rows) == (124, 11, 126)
    # p50: rank 62 of the 100 in (0,0.5] ms: 0.5 * 62 / 100 = 0.31 ms
    assert got.p50 == pytest.approx(0.00031)
    assert (got.latency_min, got.latency_max) == (0.0001, 4.0)


def test_a_version_with_no_windows_has_zeros_and_no_latencies() -> None:
    got = figures(WINDOWS, model="churn", version=9, until=UNTIL, span=timedelta(hours=1))
    assert (got.requests, got.replicas, got.per_second, got.error_rate) == (0, 0, 0.0, None)
    assert (got.latency_mean, got.latency_min, got.p50, got.p99) == (None, None, None, None)


def test_per_minute_has_every_minute_summed_over_replicas_zeros_where_none() -> None:
    since = UNTIL - timedelta(minutes=2)  # 12:28:20: the minute 12:28 counts whole
    minutes = per_minute(WINDOWS, model="churn", version=2, since=since, until=UNTIL)
    assert [m.start for m in minutes] == [at(12, 28), at(12, 29), at(12, 30)]
    assert [(m.requests, m.errors) for m in minutes] == [(0, 0), (10, 0), (10, 1)]
    assert minutes[0].p50 is minutes[0].p99 is None
    # 12:29 (B): p50 rank 5 = the top of (25,50] ms = 50 ms; p99 rank 9.9 → 99 ms, max 90 ms
    assert (minutes[1].p50, minutes[1].p99) == pytest.approx((0.05, 0.09))
    # 12:30 (A): p50 rank 5 of 6 in (0.5,1] ms; p99 rank 9.9: 10 + 15 * 3.9 / 4 = 24.6 ms,
    # above the max seen: 20 ms
    assert (minutes[2].p50, minutes[2].p99) == pytest.approx((0.0005 + 0.0005 * 5 / 6, 0.02))
    day = per_minute(
        WINDOWS, model="churn", version=2, since=UNTIL - timedelta(days=1), until=UNTIL
    )
    assert len(day) == 24 * 60 + 1 and sum(m.requests for m in day) == 124


def test_quantile_bounds_are_the_bucket_narrowed_to_what_was_seen() -> None:
    stats = summed("churn", 2, at(12, 29), [A, B])
    assert quantile_bounds(stats, 0.99) == (0.05, 0.09)  # (50,100] ms, max 90 ms
    assert quantile_bounds(stats, 0.5) == (0.01, 0.025)
    assert quantile_bounds(stats, 0.0) == (0.0008, 0.001)  # the min seen, in (0.5,1] ms
    assert quantile_bounds(summed("churn", 2, at(0, 0), [C]), 0.99) == (2.5, 4.0)
    assert quantile_bounds(summed("churn", 2, at(0, 0), []), 0.5) is None


def _stats_of(latencies: list[float]) -> ServingStats:
    counts = list(empty_buckets())
    for value in latencies:
        counts[bisect_left(LATENCY_BUCKETS, value)] += 1
    return ServingStats(
        model="m",
        version=1,
        since=UNTIL,
        requests=len(latencies),
        latency_sum=sum(latencies),
        latency_min=min(latencies),
        latency_max=max(latencies),
        latency_buckets=tuple(counts),
    )


@settings(max_examples=300, deadline=None)
@given(
    latencies=st.lists(st.floats(0.0, 5.0, allow_nan=False), min_size=1, max_size=300),
    q=st.sampled_from([0.0, 0.5, 0.9, 0.99, 1.0]),
)
def test_the_estimate_and_the_true_quantile_share_the_stated_bounds(
    latencies: list[float], q: float
) -> None:
    stats = _stats_of(latencies)
    exact = sorted(latencies)[max(math.ceil(q * len(latencies)), 1) - 1]
    estimate = stats.latency_quantile(q)
    bounds = quantile_bounds(stats, q)
    assert estimate is not None and bounds is not None
    low, high = bounds
    assert low <= exact <= high
    assert low <= estimate <= high
    assert abs(estimate - exact) <= high - low
