"""Recording this server process's serving stats in the metadata store, off the request path.

``StatsFlusher.run`` records the windows ``StatsWindows`` holds every
``serve.stats_flush_seconds``, then calls ``after`` (the canary and rollback judges), until
``stop``; then it records once more and ends. The store is written in a worker thread, so
the event loop never waits for the database. One flush runs at a time, and it is never
cancelled half-way (``stop`` waits for it): two writes of the same window can therefore not
land out of order.
A flush that fails is logged and changes nothing: the next one writes the same windows
again, with what they gained meanwhile (``StatsWindows``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable

from gristmill.server.stats_windows import StatsWindows
from gristmill.stores.serving_stats import ServingStatsStore

logger = logging.getLogger(__name__)

STOP_WITHIN = 30.0
"""Seconds ``stop`` waits for the last flush before giving up on it."""


class StatsFlusher:
    """Records ``windows`` in ``store`` (see the module docstring)."""

    def __init__(self, windows: StatsWindows, store: ServingStatsStore) -> None:
        self.windows = windows
        self.store = store
        self._stopping = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self.failures = 0
        """Flushes that failed in a row (0 after one that succeeded)."""

    async def flush(self) -> int:
        """Record the windows changed since the last record; how many. Raises what the
        store raised (nothing is marked recorded then)."""
        copies = self.windows.pending()
        if not copies:
            self.windows.recorded(copies)  # lets go of the minutes that are over
            return 0
        await asyncio.to_thread(self.store.record, [window for _, _, window in copies])
        self.windows.recorded(copies)
        return len(copies)

    def start(self, seconds: float, after: Callable[[], Awaitable[object]] | None) -> None:
        self._task = asyncio.create_task(self.run(seconds, after), name="stats-flush")

    async def run(self, seconds: float, after: Callable[[], Awaitable[object]] | None) -> None:
        while not self._stopping.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), seconds)
            await self._flush_logged()
            if after is not None and not self._stopping.is_set():
                try:
                    await after()
                except Exception:
                    logger.exception("could not judge the policies; trying again in %ss", seconds)

    async def stop(self) -> None:
        """Record what is left, once, and end ``run`` (waits at most ``STOP_WITHIN``)."""
        self._stopping.set()
        if self._task is None:
            await self._flush_logged()
            return
        try:
            await asyncio.wait_for(asyncio.shield(self._task), STOP_WITHIN)
        except TimeoutError:
            logger.error(
                "the last serving stats were not recorded within %ss; %d window(s) lost",
                STOP_WITHIN,
                len(self.windows),
            )
            self._task.cancel()

    async def _flush_logged(self) -> None:
        try:
            await self.flush()
        except Exception as exc:
            self.failures += 1
            logger.warning(
                "could not record the serving stats (%s); %d window(s) kept for the next try",
                exc,
                len(self.windows),
            )
        else:
            self.failures = 0
