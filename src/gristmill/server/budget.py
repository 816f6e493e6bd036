"""Latency budgets: "better wrong than late".

Each prediction request may have a latency budget: the request's
``x-gristmill-latency-budget-ms`` header (any protocol; ``0`` turns it off for that
request), else the version's own — ``serve.latency_budget_ms`` of the pipeline spec whose
run trained it (``spec_budget_ms``, read when the version is loaded) — else the server's
``serve.latency_budget_ms`` setting (none by default). When the version that should answer
has not answered within the budget, counted from the request's start, and its traffic
policy names a next version (a canary's primary, then the fallback chain), that next
version answers instead:
the answer names it (``x-gristmill-model-version``) and says it was a fallback
(``x-gristmill-fallback: true``; the native API's ``fallback`` field), and the miss is
counted against the version that missed (``gristmill_latency_budget_misses_total``, and
the serving figures). Each further version of the chain gets one more budget; the last one
is always awaited, and a miss is counted when it answers late.

A version that missed goes on scoring in the background (a thread cannot be stopped); its
answer is dropped. So that a version that has become slow cannot pile up work without
bound, one holding ``max_abandoned`` such calls is not asked again until they end: its
requests go straight to the next version, each counted as a miss (a bulkhead).

Only scoring that leaves the event loop can be overtaken: native servables and requests
of many rows run in threads; a one-row ONNX call runs inline and takes microseconds.
"""

from __future__ import annotations

import asyncio
import logging
import math
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

from starlette.requests import Request

from gristmill.errors import DataError, GristmillError
from gristmill.servables.port import Servable
from gristmill.server.headers import header
from gristmill.stores.metadata import MetadataStore

BUDGET_HEADER = "x-gristmill-latency-budget-ms"
"""The request header that sets (or, with 0, turns off) the request's latency budget."""

FALLBACK_HEADER = "x-gristmill-fallback"
"""The answer header present (``true``) when a version other than the chosen one answered."""

T = TypeVar("T")
logger = logging.getLogger(__name__)


class BudgetMissedError(Exception):
    """The version did not answer within the budget (or is not asked: too many of its calls
    are still running after missing theirs)."""


def request_budget(request: Request, default_ms: float | None) -> float | None:
    """The request's latency budget in seconds (``None``: none), from its header or the
    server's setting; a header that is not a number of milliseconds ≥ 0 is the client's
    error, naming the header."""
    given = header(request, BUDGET_HEADER)
    if given is None:
        return None if not default_ms else default_ms / 1000.0
    try:
        milliseconds = float(given)
    except ValueError:
        milliseconds = math.nan
    if not math.isfinite(milliseconds) or milliseconds < 0:
        raise DataError(
            f"header {BUDGET_HEADER} must be a number of milliseconds ≥ 0 (0: no budget); "
            f"it is {given[:40]!r}",
            column=BUDGET_HEADER,
        )
    return milliseconds / 1000.0 or None


def spec_budget_ms(metadata: MetadataStore, model: str, version: int) -> float | None:
    """``serve.latency_budget_ms`` of the spec of the run that trained ``model``/``version``;
    ``None`` when it has none, or the run or its spec cannot be found (logged)."""
    from gristmill.stages.specs import spec_of_run

    try:
        registered = metadata.registry.get_version(model, version)
        candidate = metadata.candidates.find_candidate(registered.candidate_id)
        run = metadata.runs.find_run(candidate.run_id) if candidate and candidate.run_id else None
        spec = None if run is None else spec_of_run(metadata, run)
    except GristmillError as exc:
        logger.warning("%s/%s: its spec's latency budget cannot be read (%s)", model, version, exc)
        return None
    if spec is None or spec.serve is None:
        return None
    return spec.serve.latency_budget_ms


class Budgets:
    """Runs a version's scoring against a deadline, and keeps count of the calls that missed
    theirs and are still running, per servable (see the module docstring)."""

    def __init__(self, max_abandoned: int = 8) -> None:
        self.max_abandoned = max_abandoned
        self._abandoned: dict[int, int] = {}
        self._pool: ThreadPoolExecutor | None = None

    @property
    def pool(self) -> ThreadPoolExecutor:
        """The threads budgeted calls run in (their own: calls that missed their budget and
        still run never hold the threads the rest of the server uses)."""
        if self._pool is None:
            self._pool = ThreadPoolExecutor(
                self.max_abandoned + 2, thread_name_prefix="gristmill-budget"
            )
        return self._pool

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)

    def abandoned(self, servable: Servable) -> int:
        """Calls of ``servable`` that missed their budget and have not ended yet."""
        return self._abandoned.get(id(servable), 0)

    async def within(
        self, servable: Servable, attempt: Callable[[], Awaitable[T]], seconds: float
    ) -> T:
        """``attempt()``'s result if it comes within ``seconds``; else ``BudgetMissedError``,
        and the call is left to end on its own (its result or error dropped)."""
        key = id(servable)
        if seconds <= 0 or self._abandoned.get(key, 0) >= self.max_abandoned:
            raise BudgetMissedError
        task = asyncio.ensure_future(attempt())
        done, _ = await asyncio.wait((task,), timeout=seconds)
        if done:
            return task.result()
        self._abandoned[key] = self._abandoned.get(key, 0) + 1

        def ended(finished: asyncio.Future[T]) -> None:
            left = self._abandoned.get(key, 1) - 1
            if left > 0:
                self._abandoned[key] = left
            else:
                self._abandoned.pop(key, None)
            if not finished.cancelled():
                finished.exception()  # retrieved: never "exception was never retrieved"

        task.add_done_callback(ended)
        raise BudgetMissedError
