"""This server process's serving figures per version and minute, until they are recorded.

``StatsWindows`` is updated on the event loop's thread, beside ``Metrics`` (a clock read, a
dict lookup and a few additions per request; no lock). ``pending`` copies every window
changed since it was last recorded — its *running totals* — for ``StatsFlusher`` to record
off the event loop; ``recorded`` then marks those copies as stored, and lets go of the
windows older than the minute before this one that have not changed since (the minute
before is kept for ``latency_range``, the ``/metrics`` min/max gauges). A record that fails
marks nothing: the next one writes the same windows again, with whatever they gained
meanwhile. Since the store replaces a replica's window with the totals it is given, nothing
is lost or counted twice.
"""

from __future__ import annotations

import operator
import os
import secrets
import socket
import time
from bisect import bisect_left
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from time import perf_counter

import numpy as np

from gristmill.stores.serving_stats import LATENCY_BUCKETS, ServingWindow

WindowKey = tuple[str, int, int, int]
"""(model, version, minute, revision): the minute as whole minutes since the epoch, the
revision of the traffic policy that sent the requests (0: they named the version)."""


def steady_clock() -> Callable[[], float]:
    """Wall-clock seconds that never step back: the time at start plus the monotonic time
    since. A window of a past minute gets no more requests, so it can be let go once
    recorded (a wall clock set back would open it again, from zero, and its record would
    replace the totals stored)."""
    start, anchor = time.time(), time.monotonic()
    return lambda: start + (time.monotonic() - anchor)


def replica_id() -> str:
    """This process's replica id: host, pid and a random part (a pid is reused, and a
    restarted server must not replace the windows of the process before it)."""
    return f"{socket.gethostname()}-{os.getpid()}-{secrets.token_hex(3)}"


@dataclass
class _Window:
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
    buckets: list[int] = field(default_factory=lambda: [0] * (len(LATENCY_BUCKETS) + 1))
    changes: int = 0
    recorded: int = 0

    def timed(self, seconds: float) -> None:
        self.requests += 1
        self.latency_sum += seconds
        self.buckets[bisect_left(LATENCY_BUCKETS, seconds)] += 1
        if self.latency_min is None or seconds < self.latency_min:
            self.latency_min = seconds
        if self.latency_max is None or seconds > self.latency_max:
            self.latency_max = seconds

    def add(self, answers: Answers) -> None:
        self.requests += answers.requests
        self.rows += answers.rows
        self.latency_sum += answers.latency_sum
        if self.latency_min is None or answers.latency_min < self.latency_min:
            self.latency_min = answers.latency_min
        if self.latency_max is None or answers.latency_max > self.latency_max:
            self.latency_max = answers.latency_max
        self.buckets = list(map(operator.add, self.buckets, answers.buckets))


@dataclass(slots=True)
class Answers:
    """Answered requests of one version (in one minute): what they add to its figures."""

    requests: int
    rows: int
    latency_sum: float
    latency_min: float
    latency_max: float
    buckets: list[int]
    """Requests per ``LATENCY_BUCKETS`` bound (the lowest bound not below their latency),
    and above the last one."""

    @classmethod
    def of(cls, rows: int, seconds: Sequence[float]) -> Answers:
        """Requests of ``rows`` rows in all, answered in ``seconds`` each."""
        if len(seconds) == 1:
            buckets = [0] * (len(LATENCY_BUCKETS) + 1)
            buckets[bisect_left(LATENCY_BUCKETS, seconds[0])] = 1
        else:
            places = np.searchsorted(_BOUNDS, seconds)  # as bisect_left
            buckets = np.bincount(places, minlength=len(LATENCY_BUCKETS) + 1).tolist()
        return cls(len(seconds), rows, sum(seconds), min(seconds), max(seconds), buckets)


_BOUNDS = np.asarray(LATENCY_BUCKETS)


def _nothing() -> None:
    return


Pending = list[tuple[WindowKey, int, ServingWindow]]
"""Copies of changed windows: key, the change count copied, the window's totals."""


class StatsWindows:
    """Per-minute figures of each version this process served (see the module docstring)."""

    def __init__(
        self, replica: str | None = None, clock: Callable[[], float] | None = None
    ) -> None:
        self.replica = replica or replica_id()
        self._clock = clock or steady_clock()
        self._windows: dict[WindowKey, _Window] = {}
        self.before_read: Callable[[], None] = _nothing
        """Called before the windows are read (``pending``, ``latency_range``): what counts
        requests in bulk (``tally``) folds what it holds."""

    def _of(
        self, model: str, version: int | str, revision: int, minute: int | None = None
    ) -> _Window | None:
        if not model or (isinstance(version, str) and not version.isdigit()):
            return None  # a request that failed before a version was found
        if minute is None:
            minute = int(self._clock() // 60)
        key = (model, int(version), minute, revision)
        window = self._windows.get(key)
        if window is None:
            window = self._windows[key] = _Window()
        window.changes += 1
        return window

    def answered(
        self, model: str, version: int, rows: int, seconds: float, revision: int = 0
    ) -> None:
        """One request answered, now, in ``seconds``, with ``rows`` rows."""
        self.add(model, version, revision, None, Answers.of(rows, (seconds,)))

    def add(
        self, model: str, version: int, revision: int, minute: int | None, answers: Answers
    ) -> None:
        """Requests answered in ``minute`` (``minute_of``; ``None``: this one)."""
        window = self._of(model, version, revision, minute)
        if window is not None:
            window.add(answers)

    def minute_of(self, ended: float) -> int:
        """The minute (of ``window_start``) of a request that ended at ``ended``, a
        ``perf_counter`` time."""
        return int((ended + self._clock() - perf_counter()) // 60)

    def failed(
        self, model: str, version: int | str, seconds: float, status: int, revision: int = 0
    ) -> None:
        window = self._of(model, version, revision)
        if window is not None:
            window.timed(seconds)
            if status >= 500:
                window.errors += 1
            else:
                window.client_errors += 1

    def cache_hit(self, model: str, version: int, revision: int = 0) -> None:
        window = self._of(model, version, revision)
        if window is not None:
            window.cache_hits += 1

    def fell_back(self, model: str, version: int, revision: int = 0) -> None:
        window = self._of(model, version, revision)
        if window is not None:
            window.fallbacks += 1

    def budget_missed(
        self, model: str, version: int, revision: int = 0, *, overtaken: bool = False
    ) -> None:
        """``version`` missed a request's latency budget: it answered late, or (``overtaken``)
        the next version answered instead — then the request counts as one that reached it
        (not timed: it had no answer)."""
        window = self._of(model, version, revision)
        if window is not None:
            window.budget_misses += 1
            if overtaken:
                window.requests += 1

    def pending(self) -> Pending:
        """Copies of the windows changed since they were last recorded."""
        self.before_read()
        now = datetime.now(UTC)
        copies: Pending = []
        for key, window in self._windows.items():
            if window.changes == window.recorded:
                continue
            model, version, minute, revision = key
            copy = ServingWindow(
                model=model,
                version=version,
                replica=self.replica,
                window_start=datetime.fromtimestamp(minute * 60, UTC),
                revision=revision,
                requests=window.requests,
                errors=window.errors,
                client_errors=window.client_errors,
                fallbacks=window.fallbacks,
                budget_misses=window.budget_misses,
                cache_hits=window.cache_hits,
                rows=window.rows,
                latency_sum=window.latency_sum,
                latency_min=window.latency_min,
                latency_max=window.latency_max,
                latency_buckets=tuple(window.buckets),
                updated_at=now,
            )
            copies.append((key, window.changes, copy))
        return copies

    def recorded(self, copies: Pending) -> None:
        """``copies`` (from ``pending``) are stored: windows older than the minute before
        this one and unchanged since are let go."""
        for key, changes, _ in copies:
            window = self._windows.get(key)
            if window is not None:
                window.recorded = max(window.recorded, changes)
        current = int(self._clock() // 60)
        for key, window in list(self._windows.items()):
            if key[2] < current - 1 and window.changes == window.recorded:
                del self._windows[key]

    def latency_range(self) -> dict[tuple[str, int], tuple[float, float]]:
        """The lowest and highest latency (seconds) per ``(model, version)`` of the requests
        this process timed in this minute and the one before (a version without any there
        is left out): a sliding window of one to two minutes, as Micrometer's ``_max``."""
        self.before_read()
        current = int(self._clock() // 60)
        ranges: dict[tuple[str, int], tuple[float, float]] = {}
        for (model, version, minute, _), window in self._windows.items():
            low, high = window.latency_min, window.latency_max
            if minute < current - 1 or low is None or high is None:
                continue
            seen = ranges.get((model, version))
            if seen is not None:
                low, high = min(low, seen[0]), max(high, seen[1])
            ranges[(model, version)] = (low, high)
        return ranges

    def __len__(self) -> int:
        """Windows held (waiting to be recorded, or of the current minute)."""
        return len(self._windows)
