"""Shadow scoring: versions that score a request's inputs beside the answer, off its path.

A request whose traffic policy names shadows hands each one a job (``submit``: one
``put_nowait`` on a bounded queue, nothing awaited) once its own answer is ready; one
task (``run``) takes the jobs in order and scores them in a thread of its own, never in
the event loop's default pool that answers use, so a shadow that sleeps holds that one
thread and nothing else. When the queue is full (the shadows fall behind) the job is
dropped and counted (``gristmill_shadow_dropped_total``); a shadow that raises is counted
(``gristmill_shadow_errors_total``) and logged once per version, and a shadow slower
than ``timeout`` seconds is given up on (its thread finishes the call; later jobs wait for
the thread, then are dropped when the queue is full). Shadow answers go to the prediction
log with ``shadow`` true, never to the client.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from time import perf_counter
from typing import Any

from gristmill.servables.port import Predictions, Servable
from gristmill.server.metrics import Metrics
from gristmill.server.prediction_log import PredictionLog

logger = logging.getLogger(__name__)

Scored = tuple[Mapping[str, Any], Predictions]  # the inputs to log, the shadow's answer
Job = Callable[[ThreadPoolExecutor], Awaitable[Scored]]


class ShadowScorer:
    """A bounded queue of shadow jobs and the task that scores them (see the module)."""

    def __init__(self, metrics: Metrics, *, size: int = 1_000, timeout: float = 10.0) -> None:
        self.metrics = metrics
        self.timeout = timeout
        self.log: PredictionLog | None = None
        self._queue: asyncio.Queue[tuple[Servable, str, str, Job]] = asyncio.Queue(size)
        self._pool = ThreadPoolExecutor(1, thread_name_prefix="gristmill-shadow")
        self._warned: set[tuple[str, int]] = set()
        self.scored = 0

    def submit(self, servable: Servable, protocol: str, request_id: str, job: Job) -> None:
        """Queue ``job`` (scoring ``servable``), or drop and count it when the queue is full."""
        try:
            self._queue.put_nowait((servable, protocol, request_id, job))
        except asyncio.QueueFull:
            manifest = servable.manifest
            self.metrics.shadow_dropped(manifest.model, manifest.version)

    def pending(self) -> int:
        return self._queue.qsize()

    async def run(self) -> None:
        """Score queued jobs until cancelled."""
        try:
            while True:
                servable, protocol, request_id, job = await self._queue.get()
                await self._score(servable, protocol, request_id, job)
        finally:
            self._pool.shutdown(wait=False, cancel_futures=True)

    async def _score(self, servable: Servable, protocol: str, request_id: str, job: Job) -> None:
        manifest = servable.manifest
        started = perf_counter()
        try:
            inputs, answer = await asyncio.wait_for(job(self._pool), self.timeout)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            self.metrics.shadow_failed(manifest.model, manifest.version)
            key = (manifest.model, manifest.version)
            if key not in self._warned:  # once per version: a broken shadow must not flood
                self._warned.add(key)
                logger.warning("shadow %s failed (%r); counted from now on", manifest.ref, exc)
            return
        seconds = perf_counter() - started
        self.metrics.shadow_answered(manifest.model, manifest.version, seconds)
        self.scored += 1
        if self.log is not None:
            with contextlib.suppress(Exception):  # the log never fails the shadow task
                self.log.record(
                    request_id, protocol, manifest, seconds, inputs, answer, shadow=True
                )
