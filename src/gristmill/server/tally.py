"""Answered requests, kept as they are until folded, in bulk, into the metrics, the serving
windows and the prediction log (ADR 34).

Counting each request where it was answered cost ~10 µs of the event loop's thread in a
server answering 7,000 requests/s: a histogram's bisect, a window's clock read, dict lookup
and min/max, the log's copies of a one-row block into its buffers — each numpy call from
Python ~0.5-1 µs, more once the rest of the request has left the caches cold. That was 7 %
of the server's time, for figures nobody reads at that instant. An answered request is now
appended, field by field, to a few lists; every ``FOLD_EVERY`` requests, and before
anything reads the figures (``/metrics``, the serving stats' flush, the log's write: each
calls ``fold`` first), they are folded: the latencies bucketed by one ``searchsorted``,
the blocks joined by one ``concatenate``, the requests' ids appended at once — a fraction
of a microsecond per request. Nothing is counted late or in the wrong place: every reader
folds first, and each request keeps its own time (its minute's window, the log's ``at``).

What is kept of a numeric request is what the log copies (its block, its answer's values
and probabilities: arrays, which the garbage collector does not track) and its figures (in
typed arrays): its own objects (``NumericColumns``, ``Predictions``) go as they would with
monitoring off, and nothing kept makes the collector run more often. Other requests (text
inputs, rejected rows, entity requests) are kept whole.
"""

from __future__ import annotations

import logging
from array import array
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from gristmill.servables.port import Predictions, ServableManifest
from gristmill.server.log_columns import NumericAnswers
from gristmill.server.metrics import Metrics, QuietMetrics
from gristmill.server.port import NumericColumns
from gristmill.server.prediction_log import PredictionLog
from gristmill.server.stats_windows import Answers, StatsWindows

FOLD_EVERY = 128
"""Answered requests kept before they are folded: a fold's fixed part (~15 numpy calls) is
paid once per ``FOLD_EVERY`` requests, and the fold delays the requests queued behind it;
128 measured best (ADR 34)."""

logger = logging.getLogger(__name__)


@dataclass
class _Kept:
    """Answered requests, a list (or typed array) per field, in the order they ended."""

    manifests: list[ServableManifest] = field(default_factory=list)
    revisions: array[int] = field(default_factory=lambda: array("q"))
    rows: array[int] = field(default_factory=lambda: array("q"))
    started: array[float] = field(default_factory=lambda: array("d"))  # perf_counter
    seconds: array[float] = field(default_factory=lambda: array("d"))
    ids: list[str] = field(default_factory=list)
    protocols: list[str] = field(default_factory=list)
    names: list[tuple[str, ...] | None] = field(default_factory=list)  # None: kept whole
    blocks: list[np.ndarray | None] = field(default_factory=list)
    values: list[np.ndarray | None] = field(default_factory=list)
    probabilities: list[np.ndarray | None] = field(default_factory=list)
    whole: dict[int, tuple[Any, Predictions]] = field(default_factory=dict)  # by place

    def __len__(self) -> int:
        return len(self.ids)

    def part(self, places: list[int]) -> _Kept:
        """The requests at ``places`` (in that order)."""
        part = _Kept()
        for name in ("manifests", "ids", "protocols", "names", "blocks", "values"):
            source = getattr(self, name)
            getattr(part, name).extend(source[i] for i in places)
        part.probabilities.extend(self.probabilities[i] for i in places)
        for name in ("revisions", "rows", "started", "seconds"):
            source = getattr(self, name)
            getattr(part, name).extend(source[i] for i in places)
        part.whole = {j: self.whole[i] for j, i in enumerate(places) if i in self.whole}
        return part


class AnswerTally:
    """Answered requests until folded (see the module docstring). ``log`` may be set later
    (or again); figures go to the ``metrics`` given."""

    def __init__(self, metrics: Metrics, log: PredictionLog | None = None) -> None:
        self.metrics = metrics
        self._log: PredictionLog | None = None
        self._kept = _Kept()
        self._counting = type(metrics) is not QuietMetrics
        self.log = log
        metrics.before_read = self.fold
        if metrics.windows is not None:
            metrics.windows.before_read = self.fold

    @property
    def log(self) -> PredictionLog | None:
        return self._log

    @log.setter
    def log(self, log: PredictionLog | None) -> None:
        self.fold()  # what was answered before goes where it was meant to
        self._log = log
        if log is not None:
            log.before_write = self.fold
        self.idle = not self._counting and (log is None or log.sample <= 0.0)
        """Nothing to count or log (``serve.metrics = false``, ``serve.log_sample = 0``):
        answers need not be kept at all."""

    def answered(
        self,
        manifest: ServableManifest,
        revision: int,
        rows: int,
        started: float,
        seconds: float,
        request_id: str,
        protocol: str,
        inputs: Any,
        answer: Predictions,
    ) -> None:
        """One request answered by ``manifest``'s version (sent by the traffic policy's
        ``revision``, 0 when it named the version); ``started``: its ``perf_counter`` at its
        start, ``seconds`` its latency."""
        plain = type(inputs) is NumericColumns and answer.rejected is None
        kept = self._kept
        kept.manifests.append(manifest)
        kept.revisions.append(revision)
        kept.rows.append(rows)
        kept.started.append(started)
        kept.seconds.append(seconds)
        kept.ids.append(request_id)
        kept.protocols.append(protocol)
        if plain:
            kept.names.append(inputs.names)
            kept.blocks.append(inputs.block)
            kept.values.append(answer.values)
            kept.probabilities.append(answer.probabilities)
        else:
            kept.whole[len(kept.names)] = (inputs, answer)
            kept.names.append(None)
            kept.blocks.append(None)
            kept.values.append(None)
            kept.probabilities.append(None)
        if len(kept.ids) >= FOLD_EVERY:
            self.fold()

    def __len__(self) -> int:
        return len(self._kept)

    def fold(self) -> None:
        """Count and log what was answered since the last fold."""
        kept = self._kept
        if not kept.ids:
            return
        self._kept = _Kept()
        try:
            for group in _groups(kept):
                self._fold(group)
        except Exception:  # counting must never fail the request that happened to fold
            logger.exception("could not count or log %d answered request(s)", len(kept))

    def _fold(self, group: _Kept) -> None:
        """Requests answered by one version, sent by one policy revision."""
        manifest, revision = group.manifests[0], group.revisions[0]
        if self._counting:
            windows = self.metrics.windows
            model, version = manifest.model, manifest.version
            if windows is None:
                counted = Answers.of(sum(group.rows), group.seconds)
                self.metrics.add(model, version, revision, None, counted)
            else:
                for minute, part in _by_minute(windows, group):
                    counted = Answers.of(sum(part.rows), part.seconds)
                    self.metrics.add(model, version, revision, minute, counted)
        log = self._log
        if log is not None:
            _log(log, manifest, group)


def _log(log: PredictionLog, manifest: ServableManifest, kept: _Kept) -> None:
    """``kept`` (answered by ``manifest``'s version) into ``log``."""
    seconds = np.frombuffer(kept.seconds, dtype=np.float64)
    ended = np.frombuffer(kept.started, dtype=np.float64) + seconds
    names = kept.names[0]
    if not kept.whole and names is not None and kept.names.count(names) == len(kept):
        answers = NumericAnswers(
            kept.ids, kept.protocols, ended, seconds, kept.blocks,  # type: ignore[arg-type]
            kept.values, kept.probabilities,  # type: ignore[arg-type]
        )  # fmt: skip
        log.record_blocks(manifest, names, answers)
        return
    for i in range(len(kept)):  # requests of several kinds: each on its own
        if i in kept.whole:
            inputs, answer = kept.whole[i]
        else:
            inputs = NumericColumns(kept.names[i], kept.blocks[i])  # type: ignore[arg-type]
            answer = Predictions(kept.values[i], kept.probabilities[i])  # type: ignore[arg-type]
        log.record_many(
            manifest, (kept.ids[i],), (kept.protocols[i],), ended[i : i + 1],
            seconds[i : i + 1], (inputs,), (answer,),
        )  # fmt: skip


def _groups(kept: _Kept) -> Iterable[_Kept]:
    """``kept`` by version and policy revision (usually one group: ``kept`` itself)."""
    first, revision = kept.manifests[0], kept.revisions[0]
    count = len(kept)
    if kept.manifests.count(first) == count and kept.revisions.count(revision) == count:
        return (kept,)
    places: dict[tuple[int, int], list[int]] = {}
    for i, (manifest, revision) in enumerate(zip(kept.manifests, kept.revisions, strict=True)):
        # by identity: a manifest's hash walks all its fields
        places.setdefault((id(manifest), revision), []).append(i)
    return [kept.part(group) for group in places.values()]


def _by_minute(windows: StatsWindows, kept: _Kept) -> Iterable[tuple[int, _Kept]]:
    """``kept`` by the minute each request ended in (usually one: ``kept`` itself; the
    requests are in the order they ended)."""
    started, seconds = kept.started, kept.seconds
    first = windows.minute_of(started[0] + seconds[0])
    if windows.minute_of(started[-1] + seconds[-1]) == first:
        return ((first, kept),)
    places: dict[int, list[int]] = {}
    for i, (start, took) in enumerate(zip(started, seconds, strict=True)):
        places.setdefault(windows.minute_of(start + took), []).append(i)
    return [(minute, kept.part(group)) for minute, group in places.items()]
