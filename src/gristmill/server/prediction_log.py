"""The prediction log: answered requests written off the request path, in batches.

A served request reaches the log through the server's tally (``tally``, ADR 34), which hands
over answered requests in bulk (``record_many``; ``record`` for one): a sampling draw, then,
for requests whose inputs came as numeric blocks (``NumericColumns``, the usual request of a
numeric model), their blocks, ids, times, latencies and answers copied into the columns of
their version and input names (``log_columns``: nothing of the requests is kept, so the
write has no per-request objects to gather or free); any other request is one tuple appended
to a list, holding *references* to its arrays and the answer's. A background task (``run``)
takes them every ``flush_seconds`` (or sooner when they hold ``flush_rows`` requests),
writes them in a worker thread as Parquet, one file per model version and input columns
(``<folder>/<model>/<version>/<time>-<pid>-<n>.parquet``, one row per scored row, built
column by column: ``log_tables``), and announces each written file on the bus as
``predictions.logged`` (its absolute ``path``) through an outbox (``log_outbox``): a file
written while the bus is away is announced once it is back, on a later flush or, after a
restart, by the next server on the folder. A row holds the request id, protocol, time,
latency, its place in the request, the input columns (an entity request's keys, with its
rows' ``status`` and scored ``features`` beside), the prediction and the probabilities, and
``shadow`` (a shadow version's answer). What cannot be written is logged and dropped: the
log never fails or slows a request.

Records are kept between writes, so a full garbage collection would walk them *and* every
object the libraries made at start-up; the server freezes those (``gc.freeze``) once it is
ready, so a collection only walks what is young.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import os
import random
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from itertools import compress, repeat
from operator import attrgetter, is_
from pathlib import Path
from time import perf_counter
from typing import Any, TypeVar

import numpy as np

from gristmill.core.events import PREDICTIONS_LOGGED, Event
from gristmill.core.outages import OutageLog
from gristmill.servables.port import Predictions, ServableManifest
from gristmill.server.log_columns import BlockColumns, NumericAnswers
from gristmill.server.log_outbox import SCAN_EVERY, LogOutbox
from gristmill.server.log_tables import GroupKey, Record, grouped, table
from gristmill.server.port import NumericColumns

logger = logging.getLogger(__name__)
T = TypeVar("T")

Publish = Callable[[list[Event]], Awaitable[None]]
ANNOUNCE_CHUNK = 500
"""At most this many files announced in one publication (a backlog after an outage)."""


def _nothing() -> None:
    return


_BLOCK = attrgetter("block")
_NAMES = attrgetter("names")
_VALUES = attrgetter("values")
_PROBABILITIES = attrgetter("probabilities")
_REJECTED = attrgetter("rejected")


def _picked(values: Sequence[T], drawn: list[bool]) -> list[T]:
    return list(compress(values, drawn))


def _blocks_of(names: tuple[str, ...], inputs: Sequence[Any]) -> bool:
    """Whether every one of ``inputs`` is a numeric block of the columns ``names`` (the
    very tuple: a request's plan names its columns once)."""
    if len(inputs) == 1:
        return True
    if set(map(type, inputs)) != {NumericColumns}:
        return False
    return all(map(is_, map(_NAMES, inputs), repeat(names)))


class PredictionLog:
    """Sampled, batched prediction records (see the module docstring)."""

    def __init__(
        self,
        folder: Path,
        *,
        sample: float = 1.0,
        flush_seconds: float = 1.0,
        flush_rows: int = 10_000,
        publish: Publish | None = None,
    ) -> None:
        self.folder = folder
        self.sample = sample
        self.flush_seconds = flush_seconds
        self.flush_rows = flush_rows
        self.publish = publish
        self._pending: dict[Any, list[Record]] = {}  # records kept the general way
        self._blocks: dict[Any, BlockColumns] = {}  # numeric requests, as columns
        self._count = 0
        self._wake = asyncio.Event()
        self.written = 0
        self.outbox = LogOutbox(folder)
        self._unannounced: list[Event] = []  # written, their markers kept, not yet on the bus
        self._scanned = -SCAN_EVERY  # monotonic time of the last scan of the outbox
        self._outage = OutageLog()
        self.before_write: Callable[[], None] = _nothing
        """Called before a write: what keeps requests to record in bulk (``tally``) hands
        them over."""

    def record(
        self,
        request_id: str,
        protocol: str,
        manifest: ServableManifest,
        seconds: float,
        columns: Mapping[str, Any],
        answer: Predictions,
        *,
        shadow: bool = False,
    ) -> None:
        """Keep one request answered now (if the sample draws it); ``shadow``: a shadow
        version scored it beside the answer (never returned)."""
        self.record_many(
            manifest, (request_id,), (protocol,), np.array([perf_counter()]),
            np.array([seconds]), (columns,), (answer,), shadow=shadow,
        )  # fmt: skip

    def record_many(
        self,
        manifest: ServableManifest,
        request_ids: Sequence[str],
        protocols: Sequence[str],
        ended: np.ndarray,
        seconds: np.ndarray,
        inputs: Sequence[Mapping[str, Any]],
        answers: Sequence[Predictions],
        *,
        shadow: bool = False,
    ) -> None:
        """Keep requests ``manifest``'s version answered (those the sample draws) for the
        next write: their ids, protocols, ends (``perf_counter`` times), latencies, inputs
        and answers, in the same order."""
        drawn = self._draw(len(request_ids))
        if drawn is not None:
            if not any(drawn):
                return
            request_ids, protocols = _picked(request_ids, drawn), _picked(protocols, drawn)
            inputs, answers = _picked(inputs, drawn), _picked(answers, drawn)
            ended, seconds = ended[drawn], seconds[drawn]
        first = inputs[0]
        if (
            type(first) is NumericColumns
            and _blocks_of(first.names, inputs)
            and all(map(is_, map(_REJECTED, answers), repeat(None)))
        ):
            numeric = NumericAnswers(
                request_ids, protocols, ended, seconds, list(map(_BLOCK, inputs)),
                list(map(_VALUES, answers)), list(map(_PROBABILITIES, answers)),
            )  # fmt: skip
            if self._kept_as_blocks(manifest, first.names, numeric, shadow):
                return
            if len(numeric) > 1:  # one odd answer: each request on its own
                for i, (request_id, columns) in enumerate(zip(request_ids, inputs, strict=True)):
                    self.record_many(
                        manifest, (request_id,), (protocols[i],), ended[i : i + 1],
                        seconds[i : i + 1], (columns,), (answers[i],), shadow=shadow,
                    )  # fmt: skip
                return
        general = NumericAnswers(request_ids, protocols, ended, seconds, (), (), ())
        self._pending_records(manifest, general, inputs, answers, shadow)

    def _pending_records(
        self,
        manifest: ServableManifest,
        answered: NumericAnswers,
        inputs: Sequence[Mapping[str, Any]],
        answers: Sequence[Predictions],
        shadow: bool,
    ) -> None:
        """Requests kept the general way (``log_tables``): ``answered`` gives their ids,
        protocols and times."""
        at = answered.ended + (time.time() - perf_counter())  # wall-clock times
        pending = self._pending.get(None)
        if pending is None:
            pending = self._pending[None] = []
        ids, protocols, seconds = answered.request_ids, answered.protocols, answered.seconds
        rows = zip(ids, protocols, at.tolist(), seconds.tolist(), inputs, answers, strict=True)
        pending += [
            (request_id, protocol, manifest, when, latency, columns, answer, shadow)
            for request_id, protocol, when, latency, columns, answer in rows
        ]
        self._counted(len(answers))

    def record_blocks(
        self, manifest: ServableManifest, names: tuple[str, ...], answers: NumericAnswers
    ) -> None:
        """``record_many`` for numeric requests of the input columns ``names`` given by
        their parts, so that whoever keeps them until then need not keep the objects around
        them (``tally``)."""
        drawn = self._draw(len(answers))
        if drawn is not None:
            if not any(drawn):
                return
            answers = answers.picked(drawn)
        if self._kept_as_blocks(manifest, names, answers, False):
            return
        for i in range(len(answers)):  # one odd answer: each request on its own
            one = answers.one(i)
            if not self._kept_as_blocks(manifest, names, one, False):
                inputs = [NumericColumns(names, block) for block in one.blocks]
                whole = list(map(Predictions, one.values, one.probabilities))
                self._pending_records(manifest, one, inputs, whole, False)

    def _draw(self, count: int) -> list[bool] | None:
        """Which of ``count`` requests the sample draws (``None``: every one)."""
        if self.sample >= 1.0:
            return None
        if self.sample <= 0.0:
            return [False] * count
        return [random.random() < self.sample for _ in range(count)]

    def _kept_as_blocks(
        self,
        manifest: ServableManifest,
        names: tuple[str, ...],
        answers: NumericAnswers,
        shadow: bool,
    ) -> bool:
        """``answers`` copied into the columns of their version and input names, filed by
        identity (a dict lookup, not a hash of the manifest or the names): nothing of them
        is kept (``log_columns``); ``False`` (nothing kept) when one does not fit."""
        key = (id(manifest), id(names))
        kept = self._blocks.get(key)
        if kept is None or kept.manifest is not manifest:
            kept = self._blocks[key] = BlockColumns(manifest, names)
        if not kept.add_many(answers, time.time() - perf_counter(), shadow):
            return False
        self._counted(len(answers))
        return True

    def _counted(self, count: int) -> None:
        self._count += count
        if self._count >= self.flush_rows:
            self._wake.set()

    async def run(self) -> None:
        """Write what was recorded, every ``flush_seconds`` (and announce what an earlier
        server left unannounced, at once), until cancelled (then once more)."""
        try:
            while True:
                await self.flush()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), self.flush_seconds)
                self._wake.clear()
        finally:
            await asyncio.shield(self.flush())

    async def flush(self) -> None:
        """Write what is pending now, and announce it with every file not announced yet."""
        self.before_write()
        pending, self._pending = self._pending, {}
        blocks, self._blocks = self._blocks, {}
        count, self._count = self._count, 0
        events: list[Event] = []
        if count:
            try:
                events = await asyncio.to_thread(self._write, pending, blocks)
            except Exception:  # the log must never take the server down
                logger.exception("could not write %d prediction record(s); dropped", count)
            else:
                self.written += count
        if self.publish is not None:
            await self._announce(self.publish, events)

    async def _announce(self, publish: Publish, events: list[Event]) -> None:
        """Publish ``events`` after those still waiting (this server's, and — at start and
        every ``SCAN_EVERY`` — those other servers left in the outbox), removing the markers
        of what the bus took. An outage is logged without flooding: once, then reminders."""
        if time.monotonic() - self._scanned >= SCAN_EVERY:
            self._scanned = time.monotonic()
            known = {event.id for event in self._unannounced}
            try:
                found = await asyncio.to_thread(self.outbox.waiting, known)
            except Exception:
                logger.exception("could not read the log's outbox %s", self.outbox.folder)
                found = []
            if found:
                logger.warning(
                    "announcing %d prediction log file(s) an earlier server left unannounced",
                    len(found),
                )
            self._unannounced += found
        waiting, self._unannounced = [*self._unannounced, *events], []
        for start in range(0, len(waiting), ANNOUNCE_CHUNK):
            chunk = waiting[start : start + ANNOUNCE_CHUNK]
            try:
                await publish(chunk)
            except Exception as exc:
                self._unannounced = waiting[start:]
                self._failed(exc)
                return
            try:
                await asyncio.to_thread(self.outbox.done, chunk)
            except OSError as exc:  # announced again later: consumers count a file once
                logger.warning("could not remove announced files' markers: %s", exc)
        lasted = self._outage.recovered()
        if lasted is not None:
            logger.warning(
                "announced %d prediction log file(s) kept while the bus was away (%.0fs)",
                len(waiting),
                lasted,
            )

    def _failed(self, exc: Exception) -> None:
        said = self._outage.failed()
        if said == "started":
            logger.warning(
                "could not announce %d prediction log file(s) (%s); they are kept in %s and "
                "announced when the bus is back",
                len(self._unannounced),
                exc,
                self.outbox.folder,
            )
        elif said == "still":
            logger.warning(
                "still cannot announce %d prediction log file(s) after %.0fs: %s",
                len(self._unannounced),
                self._outage.lasted,
                exc,
            )

    def _write(
        self, pending: dict[Any, list[Record]], blocks: dict[Any, BlockColumns]
    ) -> list[Event]:
        try:
            return self._written(pending, blocks)
        finally:
            _let_go(pending)

    def _written(
        self, pending: dict[Any, list[Record]], blocks: dict[Any, BlockColumns]
    ) -> list[Event]:
        """Write the groups' files, each after its marker (when the log announces) and under
        a temporary name until complete; their ``predictions.logged`` events."""
        import pyarrow.parquet as pq

        stamp = time.strftime("%Y%m%dT%H%M%S", time.gmtime())
        written: list[Event] = []
        groups: dict[GroupKey, list[Record]] = {}
        for records in pending.values():
            groups.update(grouped(records))
        made: list[tuple[str, int, int, Callable[[], Any]]] = [
            (model, version, len(records), functools.partial(table, inputs, records))
            for (model, version, inputs, _), records in groups.items()
        ]
        made += [
            (b.manifest.model, b.manifest.version, b.requests, b.table)
            for b in blocks.values()
            if b.requests
        ]
        for model, version, count, make in made:
            try:
                rows = make()
            except Exception:  # one odd group must not cost the others their records
                logger.exception("could not log %d prediction(s) of %s/%s", count, model, version)
                continue
            folder = self.folder / model / str(version)
            folder.mkdir(parents=True, exist_ok=True)
            path = folder / f"{stamp}-{os.getpid()}-{time.monotonic_ns()}.parquet"
            event = Event(
                type=PREDICTIONS_LOGGED,
                key=model,
                payload={
                    "model": model,
                    "version": version,
                    "path": str(path.resolve()),  # absolute: read from another cwd
                    "records": count,
                },
            )
            announced = self.publish is not None
            if announced:
                self.outbox.keep(event)
            partial = path.with_name(f".{path.name}.tmp")
            try:
                # dictionaries for text only (ids, classes): numbers are written plain,
                # ~3x faster and smaller than a dictionary tried and dropped (ADR 25)
                pq.write_table(rows, partial, use_dictionary=_text_paths(rows.schema))
                os.replace(partial, path)
            except BaseException:
                if announced:
                    self.outbox.done([event])
                raise
            written.append(event)
        return written


def _text_paths(schema: Any) -> list[str]:
    """The dotted paths of the text columns of ``schema``, nested fields too."""
    import pyarrow as pa

    paths: list[str] = []
    types = pa.types
    TEXT = (types.is_string, types.is_large_string, types.is_dictionary)  # noqa: N806

    def walk(field: Any, prefix: str) -> None:
        name = f"{prefix}{field.name}"
        if pa.types.is_struct(field.type):
            for child in field.type:
                walk(child, f"{name}.")
        elif any(is_text(field.type) for is_text in TEXT):
            paths.append(name)

    for field in schema:
        walk(field, "")
    return paths


def _let_go(pending: dict[Any, list[Record]], step: int = 256) -> None:
    """Drop the written records here, in the writer's thread, a slice at a time: freeing
    thousands of records in one call (or in the event loop, when ``flush`` returns) would
    hold the interpreter lock for milliseconds that requests would wait."""
    for records in pending.values():
        while records:
            del records[-step:]
