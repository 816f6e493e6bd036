"""Serving stats port: what each server process served, per model version and minute.

A prediction server keeps, per ``(model, version)`` and per minute, the figures of the
requests it answered — requests, server errors, client errors, fallbacks, latency budget
misses, cache hits, rows, latency (sum, min, max and a histogram on ``LATENCY_BUCKETS``) —
and records them in the metadata store, so that figures sum over every replica of a fleet
and outlive a restart. The canary judge (``training.canary``) and the rollback judge
(``training.rollback``) read them; ``gristmill monitor`` shows them.

One row, a ``ServingWindow``, holds one **replica**'s figures of one version in one minute
(``window_start``, a whole UTC minute) for the requests one traffic policy revision sent it
(``revision``; 0 for requests that named the version or an alias): so a canary's own figures
are told apart exactly, from the revision that made it the canary on, whatever else the
version served in the same minute. A replica id names one server process for its whole
life (host, pid and a random part), so only that process writes its rows. It records the
window's *running totals* (not increments): recording a window again replaces what the same
replica recorded for it, which makes a retried write harmless — a record that failed, or
that succeeded without the caller learning it, is simply written again with the newer
totals, and nothing is lost or counted twice.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Protocol

LATENCY_BUCKETS: tuple[float, ...] = (
    0.0005,
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
)
"""Upper bounds (seconds, inclusive) of the latency histogram; a last bucket takes the rest.
The server's ``/metrics`` histogram uses the same bounds."""

WINDOW = timedelta(minutes=1)


def window_start(at: datetime) -> datetime:
    """The start of the minute window that holds ``at`` (UTC)."""
    at = at.astimezone(UTC)
    return at.replace(second=0, microsecond=0)


def empty_buckets() -> tuple[int, ...]:
    return (0,) * (len(LATENCY_BUCKETS) + 1)


@dataclass(frozen=True)
class ServingWindow:
    """One replica's running totals for one version in one minute.

    ``requests`` counts every prediction request that reached the version (answered,
    failed, or overtaken by the next version at its latency budget); ``errors`` those it
    failed with a server error (5xx, the version's own fault, also when a fallback then
    answered); ``client_errors`` those refused for the client's input (4xx); ``fallbacks``
    the requests it passed to the next version of its chain (it failed, was not loaded, or
    missed the budget); ``budget_misses`` the requests it did not answer within their
    latency budget (overtaken, or answered late by the last version of a chain).
    ``revision`` is the traffic policy revision whose route sent these requests (0: they
    named the version or an alias). Latencies are in seconds; ``latency_buckets`` has one
    count per bound of ``LATENCY_BUCKETS`` plus one above the last.
    """

    model: str
    version: int
    replica: str
    window_start: datetime
    revision: int = 0
    requests: int = 0
    errors: int = 0
    client_errors: int = 0
    fallbacks: int = 0
    budget_misses: int = 0
    cache_hits: int = 0
    rows: int = 0
    latency_sum: float = 0.0
    latency_min: float | None = None
    latency_max: float | None = None
    latency_buckets: tuple[int, ...] = field(default_factory=empty_buckets)
    updated_at: datetime | None = None


@dataclass(frozen=True)
class ServingStats:
    """A version's figures summed over every replica's windows from ``since`` on (and from
    policy revision ``min_revision`` on)."""

    model: str
    version: int
    since: datetime
    min_revision: int = 0
    requests: int = 0
    errors: int = 0
    client_errors: int = 0
    fallbacks: int = 0
    budget_misses: int = 0
    cache_hits: int = 0
    rows: int = 0
    latency_sum: float = 0.0
    latency_min: float | None = None
    latency_max: float | None = None
    latency_buckets: tuple[int, ...] = field(default_factory=empty_buckets)
    replicas: int = 0
    """How many server processes recorded figures."""

    @property
    def answered(self) -> int:
        """Requests the version answered itself (an overtaken request counts as one: the
        stored figures do not tell it apart from a late answer)."""
        return self.requests - self.errors - self.client_errors

    @property
    def miss_rate(self) -> float | None:
        """Latency budget misses per request, ``None`` without requests."""
        return self.budget_misses / self.requests if self.requests else None

    @property
    def error_rate(self) -> float | None:
        """Server errors (5xx) per request, ``None`` without requests."""
        return self.errors / self.requests if self.requests else None

    @property
    def latency_mean(self) -> float | None:
        timed = sum(self.latency_buckets)
        return self.latency_sum / timed if timed else None

    def latency_quantile(self, q: float) -> float | None:
        """The ``q`` quantile (0 ≤ q ≤ 1) of latency in seconds, interpolated within its
        histogram bucket (as Prometheus' ``histogram_quantile``) and kept within the
        observed min and max; ``None`` without requests."""
        total = sum(self.latency_buckets)
        if not total:
            return None
        rank = q * total
        running = 0
        for index, count in enumerate(self.latency_buckets):
            if count and running + count >= rank:
                lower = LATENCY_BUCKETS[index - 1] if index else 0.0
                upper = LATENCY_BUCKETS[index] if index < len(LATENCY_BUCKETS) else math.inf
                if math.isinf(upper):
                    value = self.latency_max if self.latency_max is not None else lower
                else:
                    value = lower + (upper - lower) * (rank - running) / count
                low = self.latency_min if self.latency_min is not None else value
                high = self.latency_max if self.latency_max is not None else value
                return min(max(value, low), high)
            running += count
        return self.latency_max


def summed(
    model: str,
    version: int,
    since: datetime,
    windows: Iterable[ServingWindow],
    min_revision: int = 0,
) -> ServingStats:
    """The sum of ``windows`` (of ``model``/``version``) as ``ServingStats``."""
    counts = dict.fromkeys(
        ("requests", "errors", "client_errors", "fallbacks", "budget_misses", "cache_hits", "rows"),
        0,
    )
    latency_sum = 0.0
    lows: list[float] = []
    highs: list[float] = []
    buckets = list(empty_buckets())
    replicas: set[str] = set()
    for window in windows:
        for name in counts:
            counts[name] += getattr(window, name)
        latency_sum += window.latency_sum
        if window.latency_min is not None:
            lows.append(window.latency_min)
        if window.latency_max is not None:
            highs.append(window.latency_max)
        for index, count in enumerate(window.latency_buckets[: len(buckets)]):
            buckets[index] += count
        replicas.add(window.replica)
    return ServingStats(
        model=model,
        version=version,
        since=since,
        min_revision=min_revision,
        latency_sum=latency_sum,
        latency_min=min(lows) if lows else None,
        latency_max=max(highs) if highs else None,
        latency_buckets=tuple(buckets),
        replicas=len(replicas),
        **counts,
    )


class ServingStatsStore(Protocol):
    """Serving figures per version, replica and minute, summed on demand.

    * ``record`` is idempotent per ``(model, version, window_start, replica, revision)``:
      the last record of a window replaces the earlier ones (they are running totals). Several
      replicas record at once without locking one another (each writes its own rows).
    * ``stats`` sums every replica's windows that *start* at or after the minute holding
      ``since`` (figures are per whole minute, so the minute of ``since`` counts whole) and
      whose ``revision`` is at least ``min_revision`` (0: any, requests naming the version
      included).
    * ``prune`` removes history (``gristmill gc``, by ``serve.stats_keep_days``): windows of
      every model that start before the minute holding ``before``. A window still being
      written is never that old, so pruning and recording do not race.
    """

    def record(self, windows: Sequence[ServingWindow]) -> None:
        """Store each window's totals (insert, or replace the same replica's window), in one
        transaction: all or none. ``window_start`` must be a whole minute (``ValueError``)."""
        ...

    def stats(
        self, model: str, version: int, *, since: datetime, min_revision: int = 0
    ) -> ServingStats:
        """``model``/``version``'s figures from the minute of ``since`` on, sent by policy
        revision ``min_revision`` or a later one, over every replica (zeros when none were
        recorded)."""
        ...

    def list_windows(
        self, model: str, version: int | None = None, *, since: datetime
    ) -> list[ServingWindow]:
        """The recorded windows of ``model`` (of one version, if given) from the minute of
        ``since`` on, oldest first (then by version, replica and revision)."""
        ...

    def prune(self, before: datetime, *, dry_run: bool = False) -> int:
        """Remove every window (of any model) that starts before the minute holding
        ``before``; how many were removed (with ``dry_run``: how many would be, and nothing
        is removed)."""
        ...
