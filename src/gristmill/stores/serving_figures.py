"""Serving figures over sliding windows (1 min, 1 h, 1 day), from recorded ``ServingWindow``s.

Pure arithmetic, no I/O: the caller reads the windows (``ServingStatsStore.list_windows``)
and this sums them over replicas, minutes and policy revisions.

**Spans.** A span of length ``S`` at ``until`` counts every window that *starts* at or after
the minute holding ``until - S`` — what ``ServingStatsStore.stats(since=until - S)`` sums.
Figures are kept per whole minute, so a span covers at least ``S`` and at most a minute more
(the "1 min" span is the current minute and the one before); ``Figures.seconds`` is the time
it covers, from the start of its first minute to ``until``, and ``per_second`` divides by it.
The last ``serve.stats_flush_seconds`` are not recorded yet.

**Percentiles** are estimated from the summed latency histogram (``LATENCY_BUCKETS``), as
Prometheus' ``histogram_quantile`` does: the q-quantile's rank ``q·n`` falls in one bucket
``(lower, upper]``, and the estimate interpolates linearly inside it
(``lower + (upper - lower) · (q·n - below) / count``), kept within the observed min and max.
The true q-quantile (the ⌈q·n⌉-th smallest latency) lies in the same bucket, so **the error
is at most the bucket's width** — precisely, both lie in ``(lower, upper]`` ∩ ``[min, max]``
(``quantile_bounds``). With these bounds (each 2 to 2.5 times the one below), above 0.5 ms
the true value is between 0.4 and 1 times its bucket's upper bound: a p99 estimated at 30 ms
is truly in (25, 50] ms. Above the last bound (2.5 s) the bucket is open and the estimate is the
observed max. Summing buckets over replicas is exact, so the bound holds for a fleet as
for one process (percentiles averaged per replica would have none).
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from gristmill.stores.serving_stats import (
    LATENCY_BUCKETS,
    WINDOW,
    ServingStats,
    ServingWindow,
    summed,
    window_start,
)


@dataclass(frozen=True)
class Span:
    """A sliding window's ``label`` (as shown) and ``length``."""

    label: str
    length: timedelta


SPANS: tuple[Span, ...] = (
    Span("1 min", timedelta(minutes=1)),
    Span("1 h", timedelta(hours=1)),
    Span("1 day", timedelta(days=1)),
)
"""The sliding windows ``gristmill monitor`` shows."""


@dataclass(frozen=True)
class Figures:
    """One version's figures over one span ending at ``until``, summed over every replica
    (see the module docstring). ``errors`` are server errors (5xx), ``client_errors`` the
    requests refused for their input (4xx), ``budget_misses`` the requests not answered
    within their latency budget; latencies are in seconds, ``None`` without
    requests; ``p50``/``p90``/``p99`` are estimated from the histogram."""

    model: str
    version: int
    span: timedelta
    since: datetime
    until: datetime
    requests: int = 0
    errors: int = 0
    client_errors: int = 0
    fallbacks: int = 0
    budget_misses: int = 0
    cache_hits: int = 0
    rows: int = 0
    replicas: int = 0
    latency_mean: float | None = None
    latency_min: float | None = None
    latency_max: float | None = None
    p50: float | None = None
    p90: float | None = None
    p99: float | None = None
    p50_bounds: tuple[float, float] | None = None
    p90_bounds: tuple[float, float] | None = None
    p99_bounds: tuple[float, float] | None = None
    """Where each true percentile lies (``quantile_bounds``)."""

    @property
    def seconds(self) -> float:
        """The time the span covers: from the start of its first minute to ``until``."""
        return max((self.until - self.since).total_seconds(), 0.0)

    @property
    def per_second(self) -> float:
        """Requests per second over ``seconds``."""
        return self.requests / self.seconds if self.seconds else 0.0

    @property
    def error_rate(self) -> float | None:
        """Server errors per request, ``None`` without requests."""
        return self.errors / self.requests if self.requests else None

    @property
    def miss_rate(self) -> float | None:
        """Latency budget misses per request, ``None`` without requests."""
        return self.budget_misses / self.requests if self.requests else None


@dataclass(frozen=True)
class Minute:
    """One minute of a version's figures, summed over replicas (a point of the chart)."""

    start: datetime
    requests: int = 0
    errors: int = 0
    fallbacks: int = 0
    p50: float | None = None
    p99: float | None = None


def figures(
    windows: Iterable[ServingWindow], *, model: str, version: int, until: datetime, span: timedelta
) -> Figures:
    """``model``/``version``'s figures over ``span`` ending at ``until``, from ``windows``
    (others are ignored: windows of other versions, or starting before the span)."""
    since = window_start(until - span)
    stats = summed(model, version, since, _of(windows, model, version, since))
    return Figures(
        model=model,
        version=version,
        span=span,
        since=since,
        until=until,
        requests=stats.requests,
        errors=stats.errors,
        client_errors=stats.client_errors,
        fallbacks=stats.fallbacks,
        budget_misses=stats.budget_misses,
        cache_hits=stats.cache_hits,
        rows=stats.rows,
        replicas=stats.replicas,
        latency_mean=stats.latency_mean,
        latency_min=stats.latency_min,
        latency_max=stats.latency_max,
        p50=stats.latency_quantile(0.5),
        p90=stats.latency_quantile(0.9),
        p99=stats.latency_quantile(0.99),
        p50_bounds=quantile_bounds(stats, 0.5),
        p90_bounds=quantile_bounds(stats, 0.9),
        p99_bounds=quantile_bounds(stats, 0.99),
    )


def per_minute(
    windows: Iterable[ServingWindow], *, model: str, version: int, since: datetime, until: datetime
) -> list[Minute]:
    """``model``/``version``'s figures for every minute from the one holding ``since`` to the
    one holding ``until``, oldest first; a minute without windows is all zeros."""
    first, last = window_start(since), window_start(until)
    by_minute: dict[datetime, list[ServingWindow]] = defaultdict(list)
    for window in _of(windows, model, version, first):
        if window.window_start <= last:
            by_minute[window.window_start].append(window)
    minutes = []
    for index in range(int((last - first) / WINDOW) + 1):
        start = first + index * WINDOW
        stats = summed(model, version, start, by_minute.get(start, ()))
        minutes.append(
            Minute(
                start=start,
                requests=stats.requests,
                errors=stats.errors,
                fallbacks=stats.fallbacks,
                p50=stats.latency_quantile(0.5),
                p99=stats.latency_quantile(0.99),
            )
        )
    return minutes


def quantile_bounds(stats: ServingStats, q: float) -> tuple[float, float] | None:
    """Where the true ``q`` quantile of ``stats``' latencies lies, in seconds: the bucket that
    holds its rank, narrowed to the observed min and max (``None`` without requests). The
    estimate ``stats.latency_quantile(q)`` lies in it too, so its error is at most the
    interval's width."""
    total = sum(stats.latency_buckets)
    if not total:
        return None
    rank, below = q * total, 0
    for index, count in enumerate(stats.latency_buckets):
        if count and below + count >= rank:
            lower = LATENCY_BUCKETS[index - 1] if index else 0.0
            upper = LATENCY_BUCKETS[index] if index < len(LATENCY_BUCKETS) else math.inf
            low = lower if stats.latency_min is None else max(lower, stats.latency_min)
            high = upper if stats.latency_max is None else min(upper, stats.latency_max)
            return low, high
        below += count
    return None  # unreachable: the buckets sum to ``total`` and q ≤ 1


def _of(
    windows: Iterable[ServingWindow], model: str, version: int, since: datetime
) -> list[ServingWindow]:
    return [
        w for w in windows if w.model == model and w.version == version and w.window_start >= since
    ]
