"""Adaptive micro-batching: concurrent one-row requests to one servable scored in one call.

A one-row request that is the only request the server is handling (``in_flight``, counted
by ``http.InFlight``), while requests have been coming alone (the last call held one row),
is scored at once: nothing could join it. Otherwise it joins its
servable's queue and waits for its answer. The queue is scored on the event loop's next
turn, so every request that arrived in the same turn shares the
call, and an idle server adds no wait. Only when the previous call held more than one row
(requests are arriving together) does a queue wait, at most ``max_wait`` seconds, for more
to join, up to ``max_size`` rows. A call that fails (one request's bad value spoils the
whole batch) is retried request by request, so each request gets its own answer or error.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from operator import itemgetter
from typing import Any

import numpy as np

from gristmill.errors import GristmillError
from gristmill.servables.port import NumericColumns, Predictions, Servable


@dataclass
class _Queue:
    servable: Servable
    items: list[tuple[Mapping[str, Any], asyncio.Future[Predictions]]] = field(default_factory=list)
    handle: asyncio.Handle | asyncio.TimerHandle | None = None
    last_size: int = 1
    opened: float = 0.0


class MicroBatcher:
    """Scores one-row requests together (see the module docstring). ``on_batch`` is told
    the manifest's model, version and rows of each call of the servable it makes (1 for a
    request scored alone, or again alone after its batch failed)."""

    def __init__(
        self,
        max_size: int,
        max_wait: float,
        on_batch: Callable[[str, int, int], None] | None = None,
    ) -> None:
        self.max_size = max_size
        self.max_wait = max_wait
        self._on_batch = on_batch
        self._queues: dict[int, _Queue] = {}
        self.in_flight: int | None = None  # HTTP requests being handled; None: not counted

    @property
    def enabled(self) -> bool:
        return self.max_size > 1

    def submit(self, servable: Servable, columns: Mapping[str, Any]) -> asyncio.Future[Predictions]:
        """A future of ``servable``'s answer to the one row ``columns`` holds."""
        loop = asyncio.get_running_loop()
        queue = self._queues.get(id(servable))
        if queue is None or queue.servable is not servable:
            queue = self._queues[id(servable)] = _Queue(servable)
        future: asyncio.Future[Predictions] = loop.create_future()
        if (
            self.in_flight is not None
            and self.in_flight <= 1
            and queue.last_size <= 1
            and not queue.items
        ):  # alone, and requests have been coming alone: scored now, no turn to wait for
            # (under load a request may find itself alone for a moment; scoring it at
            # once would split the batches that keep a busy server's calls few)
            self._called(servable, 1)
            _settle(servable, columns, future)
            return future
        queue.items.append((columns, future))
        if len(queue.items) >= self.max_size:
            if queue.handle is not None:
                queue.handle.cancel()
            queue.handle = None
            self._run(queue)
        elif queue.handle is None:
            queue.opened = loop.time()
            queue.handle = loop.call_soon(self._turn, queue)
        return future

    def forget(self, servable: Servable) -> None:
        """Drop ``servable``'s queue (a version the server let go), once it is empty."""
        queue = self._queues.get(id(servable))
        if queue is not None and queue.servable is servable and not queue.items:
            del self._queues[id(servable)]

    def _turn(self, queue: _Queue) -> None:
        """The queue's first chance to run: now, unless requests are arriving together."""
        loop = asyncio.get_running_loop()
        waited = loop.time() - queue.opened
        if queue.last_size > 1 and self.max_wait > waited and len(queue.items) < self.max_size:
            queue.handle = loop.call_later(self.max_wait - waited, self._flush, queue)
            return
        self._flush(queue)

    def _flush(self, queue: _Queue) -> None:
        queue.handle = None
        if queue.items:
            self._run(queue)

    def _run(self, queue: _Queue) -> None:
        items, queue.items = queue.items, []
        queue.last_size = len(items)
        servable = queue.servable
        if len(items) == 1:
            self._called(servable, 1)
            _settle(servable, *items[0])
            return
        try:
            columns = _joined(servable, [c for c, _ in items])
            answer = servable.predict(columns)
        except (GristmillError, KeyError, ValueError, TypeError):
            for item in items:  # each request its own answer or its own error
                self._called(servable, 1)
                _settle(servable, *item)
            return
        self._called(servable, len(items))
        for index, (_, future) in enumerate(items):
            if not future.done():
                future.set_result(_row(answer, index))

    def _called(self, servable: Servable, size: int) -> None:
        if self._on_batch is not None:
            manifest = servable.manifest
            self._on_batch(manifest.model, manifest.version, size)


def _settle(
    servable: Servable, columns: Mapping[str, Any], future: asyncio.Future[Predictions]
) -> None:
    if future.done():
        return
    try:
        future.set_result(servable.predict(columns))
    except Exception as exc:  # handed to the request's own handler, which maps it
        future.set_exception(exc)


def _joined(servable: Servable, requests: list[Mapping[str, Any]]) -> Mapping[str, np.ndarray]:
    """One column per input of ``servable``, the requests' single rows one after another
    (each request's columns taken at once and transposed by ``zip``: no Python loop per
    column and request)."""
    first = requests[0]
    if type(first) is NumericColumns and all(
        type(r) is NumericColumns and r.names == first.names for r in requests
    ):  # blocks of finite numbers (the common case): their rows, one after another
        blocks: list[NumericColumns] = requests  # type: ignore[assignment]
        return NumericColumns.of_rows(first.names, np.concatenate([r.block.T for r in blocks]))
    inputs = servable.manifest.inputs
    names = [c.name for c in inputs]
    if not names:
        return {}
    if len(names) == 1:
        per_name: Any = [[request[names[0]] for request in requests]]
    else:
        per_name = zip(*map(itemgetter(*names), requests), strict=True)
    joined: dict[str, np.ndarray] = {}
    for column, values in zip(inputs, per_name, strict=True):
        if column.type == "string":
            joined[column.name] = np.concatenate([np.asarray(v, dtype=object) for v in values])
        else:
            joined[column.name] = np.concatenate(values)
    return joined


def _row(answer: Predictions, index: int) -> Predictions:
    probabilities = answer.probabilities
    rejected = answer.rejected
    return Predictions(
        answer.values[index : index + 1],
        None if probabilities is None else probabilities[index : index + 1],
        None if rejected is None else rejected[index : index + 1],
    )
