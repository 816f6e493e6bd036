"""Outages told without flooding a log: the start once, reminders ever further apart, the end once.

A worker retries a broker that is away every few seconds, and a client library reconnects
every second; a log line per attempt buries everything else. ``OutageLog`` decides which
failures are worth a line, and the caller writes it (with its own words and ``extra``).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Literal

Said = Literal["started", "still"]


class OutageLog:
    """Whether an outage is on, and when it is worth saying so again.

    ``failed(who)`` notes that ``who`` (a worker loop, a connection) failed and returns
    ``"started"`` for the first failure of an outage, ``"still"`` when a reminder is due —
    ``first`` seconds after the start, then at intervals doubling up to ``cap`` — and
    ``None`` otherwise. ``recovered(who)`` notes that ``who`` works again; when nothing is
    failing any more it returns how long the outage lasted (say it ended), else ``None``.
    Several parties may share one log (the loops of one worker process): the outage lasts
    while any of them fails, and each line is said once for all of them. Not thread-safe:
    share it within one event loop.
    """

    def __init__(
        self,
        *,
        first: float = 10.0,
        cap: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.first = first
        self.cap = cap
        self._clock = clock
        self._failing: set[str] = set()
        self._since = 0.0
        self._next = 0.0
        self._interval = first

    @property
    def on(self) -> bool:
        """Whether anything is failing now."""
        return bool(self._failing)

    @property
    def lasted(self) -> float:
        """Seconds since the outage started (0 when none is on)."""
        return self._clock() - self._since if self._failing else 0.0

    def failed(self, who: str = "") -> Said | None:
        now = self._clock()
        if not self._failing:
            self._failing.add(who)
            self._since, self._interval = now, self.first
            self._next = now + self.first
            return "started"
        self._failing.add(who)
        if now < self._next:
            return None
        self._interval = min(self._interval * 2, self.cap)
        self._next = now + self._interval
        return "still"

    def recovered(self, who: str = "") -> float | None:
        if who not in self._failing:
            return None
        lasted = self.lasted
        self._failing.discard(who)
        return None if self._failing else lasted
