"""The prediction log: answered requests written off the request path, in batches.

``record`` is all a request pays: a sampling draw and one tuple appended to a list, holding
*references* to the request's arrays and the answer's (nothing is converted or copied). A
background task (``run``) takes the list every ``flush_seconds`` (or sooner when it holds
``flush_rows`` requests), writes it in a worker thread as one JSON Lines file per model
version (``<folder>/<model>/<version>/<time>-<pid>.jsonl``; orjson serializes the numpy
arrays itself), and announces each written file on the bus as ``predictions.logged``. A
record holds the request id, protocol, model, version, time, latency, the input columns,
the predictions and probabilities. What cannot be written is logged and dropped: the log
never fails or slows a request.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import random
import time
from collections import defaultdict
from collections.abc import Awaitable, Callable, Mapping
from pathlib import Path
from typing import Any

import orjson

from gristmill.core.events import PREDICTIONS_LOGGED, Event
from gristmill.servables.port import Predictions, ServableManifest

logger = logging.getLogger(__name__)

_OPTIONS = orjson.OPT_SERIALIZE_NUMPY | orjson.OPT_NON_STR_KEYS
Publish = Callable[[list[Event]], Awaitable[None]]
_Record = tuple[str, str, ServableManifest, float, float, Mapping[str, Any], Predictions]


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
        self._pending: list[_Record] = []
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
    ) -> None:
        """Keep one answered request for the next write (if the sample draws it)."""
        if self.sample < 1.0 and (self.sample <= 0.0 or random.random() >= self.sample):
            return
        self._pending.append(
            (request_id, protocol, manifest, time.time(), seconds, columns, answer)
        )
        if len(self._pending) >= self.flush_rows:
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
        pending, self._pending = self._pending, []
        if not pending:
            return
        try:
            files = await asyncio.to_thread(self._write, pending)
        except Exception:  # the log must never take the server down
            logger.exception("could not write %d prediction record(s); dropped", len(pending))
            return
        self.written += len(pending)
        if self.publish is None:
            return
        events = [
            Event(
                type=PREDICTIONS_LOGGED,
                key=model,
                payload={"model": model, "version": version, "path": str(path), "records": n},
            )
            for (model, version), (path, n) in files.items()
        ]
        try:
            await self.publish(events)
        except Exception:
            logger.exception("could not announce %d prediction log file(s)", len(events))

    def _write(self, pending: list[_Record]) -> dict[tuple[str, int], tuple[Path, int]]:
        groups: dict[tuple[str, int], list[bytes]] = defaultdict(list)
        for request_id, protocol, manifest, at, seconds, columns, answer in pending:
            line = {
                "request_id": request_id,
                "protocol": protocol,
                "model": manifest.model,
                "version": manifest.version,
                "at": at,
                "latency_ms": seconds * 1000.0,
                "inputs": {name: _plain(values) for name, values in columns.items()},
                "predictions": _plain(answer.values),
            }
            if answer.probabilities is not None:
                line["probabilities"] = answer.probabilities
            groups[(manifest.model, manifest.version)].append(
                orjson.dumps(line, default=str, option=_OPTIONS)
            )
        stamp = time.strftime("%Y%m%dT%H%M%S", time.gmtime())
        written = {}
        for (model, version), lines in groups.items():
            folder = self.folder / model / str(version)
            folder.mkdir(parents=True, exist_ok=True)
            path = folder / f"{stamp}-{os.getpid()}-{time.monotonic_ns()}.jsonl"
            path.write_bytes(b"\n".join(lines) + b"\n")
            written[(model, version)] = (path, len(lines))
        return written


def _plain(values: Any) -> Any:
    """What orjson can write: numeric arrays as they are, object arrays as lists."""
    dtype = getattr(values, "dtype", None)
    if dtype is not None and dtype.kind in "OUSMm":
        return values.tolist() if dtype.kind == "O" else values.astype(str).tolist()
    return values
