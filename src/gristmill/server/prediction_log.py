"""The prediction log: answered requests written off the request path, in batches.

``record`` is all a request pays: a sampling draw and one tuple appended to a list, holding
*references* to the request's arrays and the answer's (nothing is converted or copied). A
request whose inputs came as one numeric block (``NumericColumns``) goes to the list of its
version and input names, so a write joins those blocks at once without sorting records
again. A background task (``run``) takes the lists every ``flush_seconds`` (or sooner when
they hold ``flush_rows`` requests), writes them in a worker thread as Parquet, one file per
model version and input columns (``<folder>/<model>/<version>/<time>-<pid>-<n>.parquet``,
one row per scored row, built column by column: ``log_tables``), and announces each
written file on the bus as ``predictions.logged`` (its absolute ``path``). A row holds
the request id, protocol, time, latency, its place in the request, the input columns (an
entity request's keys, with its rows' ``status`` and scored ``features`` beside), the
prediction and the probabilities, and ``shadow`` (a shadow version's answer). What
cannot be written is logged and dropped: the log never fails or slows
a request.

Records are kept between writes, so a full garbage collection would walk them *and* every
object the libraries made at start-up; the server freezes those (``gc.freeze``) once it is
ready, so a collection only walks what is young.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import random
import time
from collections.abc import Awaitable, Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from gristmill.core.events import PREDICTIONS_LOGGED, Event
from gristmill.servables.port import Predictions, ServableManifest
from gristmill.server.log_tables import GroupKey, Record, grouped, table
from gristmill.server.port import NumericColumns

logger = logging.getLogger(__name__)

Publish = Callable[[list[Event]], Awaitable[None]]


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
        self._pending: dict[Any, list[Record]] = {}
        self._names: dict[Any, tuple[str, ...]] = {}  # the input names of each block list
        self._count = 0
        self._wake = asyncio.Event()
        self.written = 0

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
        """Keep one answered request for the next write (if the sample draws it); ``shadow``:
        a shadow version scored it beside the answer (never returned)."""
        if self.sample < 1.0 and (self.sample <= 0.0 or random.random() >= self.sample):
            return
        kept: Mapping[str, Any] | np.ndarray = columns
        key = None
        if type(columns) is NumericColumns:
            # filed by identity (a dict lookup, not a hash of the manifest or the names); only
            # the block is kept, not the columns made of it
            key, kept = (id(manifest), id(columns.names)), columns.block
        pending = self._pending.get(key)
        if pending is None:
            pending = self._pending[key] = []
            if key is not None:
                self._names[key] = columns.names  # type: ignore[attr-defined]
        pending.append((request_id, protocol, manifest, time.time(), seconds, kept, answer, shadow))
        self._count += 1
        if self._count >= self.flush_rows:
            self._wake.set()

    async def run(self) -> None:
        """Write what was recorded, every ``flush_seconds``, until cancelled (then once more)."""
        try:
            while True:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), self.flush_seconds)
                self._wake.clear()
                await self.flush()
        finally:
            await asyncio.shield(self.flush())

    async def flush(self) -> None:
        """Write and announce what is pending now."""
        pending, self._pending = self._pending, {}
        names, self._names = self._names, {}
        count, self._count = self._count, 0
        if not count:
            return
        try:
            files = await asyncio.to_thread(self._write, pending, names)
        except Exception:  # the log must never take the server down
            logger.exception("could not write %d prediction record(s); dropped", count)
            return
        self.written += count
        if self.publish is None:
            return
        events = [
            Event(
                type=PREDICTIONS_LOGGED,
                key=model,
                payload={
                    "model": model,
                    "version": version,
                    "path": str(path.resolve()),  # absolute: read from another cwd
                    "records": n,
                },
            )
            for model, version, path, n in files
        ]
        try:
            await self.publish(events)
        except Exception:
            logger.exception("could not announce %d prediction log file(s)", len(events))

    def _write(
        self, pending: dict[Any, list[Record]], names: dict[Any, tuple[str, ...]]
    ) -> list[tuple[str, int, Path, int]]:
        try:
            return self._written(pending, names)
        finally:
            _let_go(pending)

    def _written(
        self, pending: dict[Any, list[Record]], names: dict[Any, tuple[str, ...]]
    ) -> list[tuple[str, int, Path, int]]:
        import pyarrow.parquet as pq

        stamp = time.strftime("%Y%m%dT%H%M%S", time.gmtime())
        written = []
        groups: dict[GroupKey, list[Record]] = {}
        for key, records in pending.items():
            if key is None:
                groups.update(grouped(records))
            else:  # one version's requests whose inputs were blocks of the same names
                manifest = records[0][2]
                same = (manifest.model, manifest.version, names[key], True)
                groups.setdefault(same, []).extend(records)
        for (model, version, inputs, blocks), records in groups.items():
            try:
                rows = table(inputs, records, blocks=blocks)
            except Exception:  # one odd group must not cost the others their records
                logger.exception(
                    "could not log %d prediction(s) of %s/%s", len(records), model, version
                )
                continue
            folder = self.folder / model / str(version)
            folder.mkdir(parents=True, exist_ok=True)
            path = folder / f"{stamp}-{os.getpid()}-{time.monotonic_ns()}.parquet"
            # dictionaries for text only (ids, classes): numbers are written plain, which
            # writes ~3x faster and smaller than a dictionary tried and dropped (ADR 25)
            pq.write_table(rows, path, use_dictionary=_text_paths(rows.schema))
            written.append((model, version, path, len(records)))
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
