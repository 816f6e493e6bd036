"""Prediction log records of numeric requests, kept as columns from the moment they come.

A request whose inputs came as one float64 block (``NumericColumns``) — the usual request
of a numeric model — is copied into ``BlockColumns``, one per version and input names: its
block into a growing float64 buffer, its prediction and probabilities into buffers of their
own, its id, protocol, time and latency onto arrays. The request's own objects (its block,
its answer's arrays, the batch they may be views of) die with the request, as they would
with no log, instead of living until the next write; the write then makes its Arrow columns
from a few buffers, with nothing to gather or free per request. Before, the writer thread
held the interpreter lock ~20 ms a second at 4,000 requests/s (gathering, then freeing,
5 objects per request), and the event loop waited for it at every socket call: the log's
whole cost in the server's p99.

What does not fit (an answer with rejected rows, a prediction of another kind than the
first one kept, probabilities for some requests only) is refused by ``add`` and kept the
general way (``log_tables``); both make the same table.
"""

from __future__ import annotations

import time
from array import array
from collections.abc import Sequence
from dataclasses import dataclass
from itertools import compress, repeat
from operator import is_
from time import perf_counter
from typing import Any

import numpy as np
import pyarrow as pa

from gristmill.servables.port import Predictions, ServableManifest

_NUMERIC = frozenset("biuf")


@dataclass(frozen=True)
class NumericAnswers:
    """Numeric requests of one version, by their parts, in the order they were answered:
    ids, protocols, ends (``perf_counter`` times) and latencies, each one's inputs as one
    block (``NumericColumns.block``, ``[columns, rows]``), its answer's values and
    probabilities (no rejected rows)."""

    request_ids: Sequence[str]
    protocols: Sequence[str]
    ended: np.ndarray
    seconds: np.ndarray
    blocks: Sequence[np.ndarray]
    values: Sequence[np.ndarray]
    probabilities: Sequence[np.ndarray | None]

    def __len__(self) -> int:
        return len(self.request_ids)

    def picked(self, drawn: Sequence[bool]) -> NumericAnswers:
        """Those ``drawn`` marks."""
        return NumericAnswers(
            list(compress(self.request_ids, drawn)),
            list(compress(self.protocols, drawn)),
            self.ended[list(drawn)],
            self.seconds[list(drawn)],
            list(compress(self.blocks, drawn)),
            list(compress(self.values, drawn)),
            list(compress(self.probabilities, drawn)),
        )

    def one(self, i: int) -> NumericAnswers:
        """The ``i``-th request alone."""
        return NumericAnswers(
            (self.request_ids[i],), (self.protocols[i],), self.ended[i : i + 1],
            self.seconds[i : i + 1], (self.blocks[i],), (self.values[i],),
            (self.probabilities[i],),
        )  # fmt: skip


class BlockColumns:
    """One version's requests with inputs of ``names`` as one block (see the module
    docstring); ``table`` is what ``log_tables.table`` makes of them."""

    __slots__ = (
        "_inputs",
        "_parts",
        "_probabilities",
        "_values",
        "at",
        "counts",
        "ids",
        "manifest",
        "names",
        "protocols",
        "requests",
        "rows",
        "seconds",
        "shadow",
    )

    def __init__(self, manifest: ServableManifest, names: tuple[str, ...]) -> None:
        self.manifest = manifest
        self.names = names
        self.ids: list[str] = []
        self.protocols: list[str] = []
        self.at = array("d")
        self.seconds = array("d")
        self.counts = array("q")
        self.shadow = bytearray()
        self.requests = 0
        self.rows = 0
        self._inputs = np.empty((len(names), 256))  # [columns, capacity]
        self._values: np.ndarray | None = None  # numeric predictions, [capacity]
        self._parts: list[np.ndarray] | None = None  # other predictions, one array a request
        self._probabilities: np.ndarray | None = None  # [capacity, classes]

    def add(
        self, request_id: str, protocol: str, seconds: float, block: np.ndarray,
        answer: Predictions, shadow: bool,
    ) -> bool:  # fmt: skip
        """Keep one request answered now (``block``: its inputs, ``[columns, rows]``);
        ``False`` when it does not fit these columns (nothing is kept then)."""
        if answer.rejected is not None:
            return False
        now = perf_counter()
        answers = NumericAnswers(
            (request_id,), (protocol,), np.array([now]), np.array([seconds]), (block,),
            (answer.values,), (answer.probabilities,),
        )  # fmt: skip
        return self.add_many(answers, time.time() - now, shadow)

    def add_many(self, answers: NumericAnswers, offset: float, shadow: bool) -> bool:
        """Keep ``answers`` (their wall-clock times: their ends plus ``offset``), all or
        none: ``False`` when one does not fit these columns (nothing is kept then). One
        ``concatenate`` per column kind, not numpy calls per request."""
        blocks, values, probabilities = answers.blocks, answers.values, answers.probabilities
        counts = list(map(len, values))
        with_probabilities = probabilities[0] is not None
        if self.requests == 0:
            self._first(values[0], probabilities[0])
        if with_probabilities != (self._probabilities is not None):
            return False
        start = self.rows
        end = start + sum(counts)
        try:
            block = blocks[0] if len(blocks) == 1 else np.concatenate(blocks, axis=1)
            joined = values[0] if len(values) == 1 else np.concatenate(values)
            if with_probabilities:
                given: Any = probabilities
                kept = given[0] if len(given) == 1 else np.concatenate(given)
        except (ValueError, TypeError):  # a request without probabilities, or other ones
            return False
        if block.shape != (len(self.names), end - start):  # a request not answered row by row
            return False
        numeric = self._values is not None
        if numeric != (joined.dtype.kind in _NUMERIC):
            return False
        if with_probabilities:
            if kept.shape != (end - start, self._probabilities.shape[1]):  # type: ignore[union-attr]
                return False
        elif not all(map(is_, probabilities, repeat(None))):
            return False
        if end > self._inputs.shape[1]:
            self._grow(end)
        self._inputs[:, start:end] = block
        if numeric:
            self._values[start:end] = joined  # type: ignore[index]
        else:
            self._parts.append(joined)  # type: ignore[union-attr]
        if with_probabilities:
            self._probabilities[start:end] = kept  # type: ignore[index]
        self.ids += answers.request_ids
        self.protocols += answers.protocols
        at = answers.ended + offset
        self.at.frombytes(np.asarray(at, dtype=np.float64).tobytes())
        self.seconds.frombytes(np.asarray(answers.seconds, dtype=np.float64).tobytes())
        self.counts.extend(counts)
        self.shadow += bytes([shadow]) * len(counts)
        self.requests += len(counts)
        self.rows = end
        return True

    def _first(self, values: np.ndarray, probabilities: np.ndarray | None) -> None:
        capacity = self._inputs.shape[1]
        if values.dtype.kind in _NUMERIC:
            self._values = np.empty(capacity, dtype=values.dtype)
        else:
            self._parts = []
        if probabilities is not None and self.manifest.classes:
            self._probabilities = np.empty((capacity, probabilities.shape[1]))

    def _grow(self, needed: int) -> None:
        capacity = max(needed, 2 * self._inputs.shape[1])
        rows = self.rows
        inputs = np.empty((len(self.names), capacity))
        inputs[:, :rows] = self._inputs[:, :rows]
        self._inputs = inputs
        if self._values is not None:
            values = np.empty(capacity, dtype=self._values.dtype)
            values[:rows] = self._values[:rows]
            self._values = values
        if self._probabilities is not None:
            probabilities = np.empty((capacity, self._probabilities.shape[1]))
            probabilities[:rows] = self._probabilities[:rows]
            self._probabilities = probabilities

    def table(self) -> pa.Table:
        """The log's rows of these requests: the columns, names and types
        ``log_tables.table`` gives them."""
        from gristmill.server.log_tables import _column

        rows, count = self.rows, self.requests
        counts = np.frombuffer(self.counts, dtype=np.int64)

        def repeated(values: Any) -> Any:
            return values if rows == count else np.repeat(values, counts)

        places = np.arange(rows) - np.repeat(np.cumsum(counts) - counts, counts)
        at = np.frombuffer(self.at, dtype=np.float64)
        latency = np.frombuffer(self.seconds, dtype=np.float64)
        shadow = np.frombuffer(bytes(self.shadow), dtype=np.bool_)
        inputs = [pa.array(np.ascontiguousarray(column[:rows])) for column in self._inputs]
        columns: dict[str, Any] = {
            "request_id": pa.array(repeated(np.array(self.ids, dtype=object)), pa.string()),
            "protocol": pa.array(repeated(np.array(self.protocols, dtype=object)), pa.string()),
            "at": pa.array((repeated(at) * 1e6).astype("datetime64[us]")),
            "latency_ms": pa.array(repeated(latency) * 1000.0),
            "row": pa.array(places),
            "shadow": pa.array(repeated(shadow)),
            "inputs": pa.StructArray.from_arrays(inputs, names=list(self.names))
            if self.names
            else pa.nulls(rows),
            "status": pa.nulls(rows, pa.string()),
        }
        if self._values is not None:
            columns["prediction"] = _column([self._values[:rows]])
        else:
            columns["prediction"] = _column(self._parts or [])
        if self._probabilities is not None:
            kept = self._probabilities[:rows]
            fields = [str(c) for c in self.manifest.classes or ()]
            arrays = [pa.array(np.ascontiguousarray(kept[:, i])) for i in range(kept.shape[1])]
            columns["probabilities"] = pa.StructArray.from_arrays(arrays, names=fields)
        return pa.table(columns)
