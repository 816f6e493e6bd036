"""The ONNX servable: one ONNX Runtime session over the pipeline-and-learner graph.

Everything a call does not depend on is decided once, at load: the order of the graph's
inputs, which are text, which may be missing, the output names. A call converts each
column (``columns``: no copy for float64 arrays), reshapes it to ``[rows, 1]`` (a view),
runs the session and wraps the outputs; a second session runs the learner alone on
feature columns (``predict_features``).

Each session runs on one thread. A server scales by processes, and a single row gains
nothing from a thread pool. A servable given ``threads`` above one (batch scoring in
one process) cuts a call of many rows into pieces that its threads take in turn, each
piece on a session of its thread's own, on one ONNX Runtime thread: a piece waits for no
other, where ONNX Runtime's own pool splits each operator across its threads and waits for
the slowest at every step — many times slower when other processes share the cores. (Runs
of one session from several threads overlap little: measured on a tree ensemble, two
threads on one session did the work of one, on two sessions of two.)
"""

from __future__ import annotations

import json
import math
import os
import queue
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np

from gristmill.errors import DataError, MissingExtraError
from gristmill.servables.columns import column, numbers, same_length, texts
from gristmill.servables.packed import PACKED_COLUMNS, PACKED_INPUT
from gristmill.servables.port import InputColumn, NumericColumns, Predictions, ServableManifest


def empty_predictions(manifest: ServableManifest) -> Predictions:
    """The answer to no rows: no values, and no probabilities of each class."""
    classes = len(manifest.classes or ())
    probabilities = np.empty((0, classes)) if manifest.output == "probabilities" else None
    return Predictions(np.empty(0, dtype=np.float64), probabilities)


Runs = Callable[[Any, dict[str, np.ndarray]], list[Any]]
"""Runs a session (the first argument) on a feed: ``_Runner._run_on``."""

PIECE_ROWS = 8_192
"""A call of fewer than twice this many rows runs whole, on one thread."""


def cpu_threads(threads: int) -> int:
    """``threads``, or the CPUs this process may use for 0."""
    if threads > 0:
        return threads
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def session(model: bytes) -> Any:
    """An ONNX Runtime session of ``model`` on the CPU, on one thread (see the module)."""
    try:
        import onnxruntime as ort
    except ImportError as exc:
        raise MissingExtraError(
            "ONNX Runtime is not installed: pip install 'gristmill[serve]'"
        ) from exc
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.log_severity_level = 3
    return ort.InferenceSession(model, options, providers=["CPUExecutionProvider"])


class _Runner:
    """One session and the plan to feed it: ``(name, is_text, nullable, is_bool)`` per
    input column; ``packed``, the columns a graph takes as one tensor (``PACKED_INPUT``),
    in order, or ``None`` when it takes one input per column."""

    def __init__(self, model: bytes, columns: Sequence[InputColumn], threads: int = 1) -> None:
        sess = session(model)
        self.session = sess
        self.pieces = Pieces(threads, model, sess) if threads > 1 else None
        by_name = {c.name: c for c in columns}
        self.needed = tuple(columns)
        graph_inputs = sess.get_inputs()
        listed = sess.get_modelmeta().custom_metadata_map.get(PACKED_COLUMNS)
        self.packed: tuple[str, ...] | None = None
        if listed is not None and [i.name for i in graph_inputs] == [PACKED_INPUT]:
            self.packed = tuple(json.loads(listed))
        names = self.packed if self.packed is not None else [i.name for i in graph_inputs]
        self.plan = tuple(
            (
                name,
                by_name[name].type == "string",
                by_name[name].nullable,
                by_name[name].type == "bool",
            )
            for name in names
        )
        self.outputs = [o.name for o in sess.get_outputs()]

    def run(self, columns: Mapping[str, Any]) -> list[Any] | None:
        """The session's outputs, or ``None`` for no rows."""
        if self.packed is not None:
            if type(columns) is NumericColumns and columns.names == self.packed:
                # finite float64 numbers, checked as they were read: fed as they are
                matrix = columns.matrix
                return self._run({PACKED_INPUT: matrix}) if len(matrix) else None
            arrays = self._arrays(columns)
            if not arrays or not len(arrays[0]):
                return None
            return self._run({PACKED_INPUT: np.column_stack(arrays)})
        arrays = self._arrays(columns)
        if arrays and not len(arrays[0]):
            return None
        return self._run(
            {
                name: array.reshape(-1, 1)
                for (name, *_), array in zip(self.plan, arrays, strict=True)
            }
        )

    def _arrays(self, columns: Mapping[str, Any]) -> list[np.ndarray]:
        """Each planned column of ``columns`` checked and converted, all of one length."""
        arrays: list[np.ndarray] = []
        for name, text, nullable, boolean in self.plan:
            values = column(columns, name, self.needed)
            array = (
                texts(values, name, nullable)
                if text
                else numbers(values, name, nullable, booleans=boolean)
            )
            if arrays and len(array) != len(arrays[0]):
                same_length(name, len(array), len(arrays[0]))
            arrays.append(array)
        return arrays

    def _run(self, feed: dict[str, np.ndarray]) -> list[Any]:
        if self.pieces is not None:
            rows = len(next(iter(feed.values())))
            if rows >= 2 * PIECE_ROWS:
                return self.pieces.run(self._run_on, feed, rows)
        return self._run_on(self.session, feed)

    def _run_on(self, sess: Any, feed: dict[str, np.ndarray]) -> list[Any]:
        try:
            result: list[Any] = sess.run(self.outputs, feed)
        except Exception as exc:  # ONNX Runtime's errors are its own types
            raise DataError(f"the model could not score these rows: {exc}") from exc
        return result


class Pieces:
    """Runs a call of many rows as pieces on ``threads`` threads (see the module docstring):
    twice as many pieces as threads, so a thread slowed by another process leaves its
    share to the others. Each piece runs on a session no other piece is using: the
    runner's own, or another of the same graph opened when a thread finds none free (so
    at most ``threads``). The threads start at the first call."""

    def __init__(self, threads: int, model: bytes, first: Any) -> None:
        self.threads = threads
        self._model = model
        self._free: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._free.put(first)
        self._pool: ThreadPoolExecutor | None = None

    def run(self, run_on: Runs, feed: dict[str, Any], rows: int) -> list[Any]:
        """``run_on`` a free session over rows ``[lo, hi)`` of ``feed`` for each piece, the
        outputs joined in row order (every output of gristmill's graphs has a row per input
        row)."""
        if self._pool is None:
            self._pool = ThreadPoolExecutor(self.threads, thread_name_prefix="gristmill-onnx")
        step = math.ceil(rows / min(2 * self.threads, math.ceil(rows / PIECE_ROWS)))
        answers = list(
            self._pool.map(
                lambda lo: self._piece(run_on, {k: v[lo : lo + step] for k, v in feed.items()}),
                range(0, rows, step),
            )
        )
        return [np.concatenate([a[i] for a in answers]) for i in range(len(answers[0]))]

    def _piece(self, run_on: Runs, feed: dict[str, Any]) -> list[Any]:
        try:
            sess = self._free.get_nowait()
        except queue.Empty:
            sess = session(self._model)
        try:
            return run_on(sess, feed)
        finally:
            self._free.put(sess)


class OnnxServable:
    """A version compiled to ONNX (see the module docstring)."""

    def __init__(
        self,
        manifest: ServableManifest,
        graph: bytes,
        learner: bytes,
        *,
        decode_classes: bool = False,
        threads: int = 1,
    ) -> None:
        self._manifest = manifest
        self._graphs = (graph, learner, decode_classes, threads)
        self._full = _Runner(graph, manifest.inputs, cpu_threads(threads))
        self._learner = _Runner(learner, manifest.features, cpu_threads(threads))
        self._classes = np.asarray(manifest.classes, dtype=object) if decode_classes else None
        self._task = manifest.task

    def __reduce__(self) -> tuple[Any, ...]:
        # Sessions do not pickle; their graphs do: batch scoring sends a servable to the
        # executor's processes, which open sessions of their own.
        graph, learner, decode_classes, threads = self._graphs
        return (_rebuilt, (self._manifest, graph, learner, decode_classes, threads))

    @property
    def manifest(self) -> ServableManifest:
        return self._manifest

    def predict(self, columns: Mapping[str, np.ndarray]) -> Predictions:
        return self._answer(self._full.run(columns))

    def predict_features(self, columns: Mapping[str, np.ndarray]) -> Predictions:
        return self._answer(self._learner.run(columns))

    def _answer(self, outputs: list[Any] | None) -> Predictions:
        if outputs is None:
            return empty_predictions(self._manifest)
        values = outputs[0].reshape(-1)
        if self._classes is not None:
            values = self._classes[values.astype(np.int64)]
        elif self._task in ("regression", "forecasting"):
            values = values.astype(np.float64, copy=False)
        probabilities = None
        if len(outputs) > 1:
            probabilities = outputs[1].astype(np.float64, copy=False)
        return Predictions(values, probabilities)


_REBUILT: dict[tuple[str, int], OnnxServable] = {}
"""The servables unpickled in this process, by digest and threads (a few, newest last)."""


def _rebuilt(
    manifest: ServableManifest, graph: bytes, learner: bytes, decode_classes: bool, threads: int
) -> OnnxServable:
    """An ``OnnxServable`` unpickled: its sessions opened again from its graphs — once per
    process for a stored servable (its digest names its graphs): an executor's worker
    scoring a job's partitions one after another opens them for the first alone."""
    key = (manifest.digest, threads)
    found = _REBUILT.get(key) if manifest.digest else None
    if found is not None and found.manifest == manifest:
        return found
    servable = OnnxServable(
        manifest, graph, learner, decode_classes=decode_classes, threads=threads
    )
    if manifest.digest:
        while len(_REBUILT) >= 4:
            del _REBUILT[next(iter(_REBUILT))]
        _REBUILT[key] = servable
    return servable
