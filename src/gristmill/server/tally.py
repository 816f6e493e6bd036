"""Answered requests, kept as they are until folded, in bulk, into the metrics, the serving
windows and the prediction log (ADR 34).

Counting each request where it was answered cost ~10 µs of the event loop's thread in a
server answering 7,000 requests/s: a histogram's bisect, a window's clock read, dict lookup
and min/max, the log's copies of a one-row block into its buffers — each numpy call from
Python ~0.5-1 µs, more once the rest of the request has left the caches cold. That was 7 %
of the server's time, for figures nobody reads at that instant. An answered request is now
one tuple appended to a list; every ``FOLD_EVERY`` requests, and before anything reads the
figures (``/metrics``, the serving stats' flush, the log's write: each calls ``fold``
first), the list is folded: the latencies bucketed by one ``searchsorted``, the blocks
joined by one ``concatenate``, the requests' ids appended at once — a fraction of a
microsecond per request. Nothing is counted late or in the wrong place: every reader folds
first, and each request keeps its own time (its minute's window, the log's ``at``).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np

from gristmill.servables.port import Predictions, ServableManifest
from gristmill.server.metrics import Metrics, QuietMetrics
from gristmill.server.prediction_log import PredictionLog
from gristmill.server.stats_windows import Answers, StatsWindows

FOLD_EVERY = 256
"""Answered requests kept before they are folded (a few hundred kB of requests' objects)."""

Answered = tuple[ServableManifest, int, int, float, float, str, str, Any, Predictions]
"""(manifest, revision, rows, started, seconds, request id, protocol, inputs, answer):
``started`` is the request's ``perf_counter`` at its start, ``seconds`` its latency."""

logger = logging.getLogger(__name__)


class AnswerTally:
    """Answered requests until folded (see the module docstring). ``log`` may be set later
    (or again); figures go to the ``metrics`` given."""

    def __init__(self, metrics: Metrics, log: PredictionLog | None = None) -> None:
        self.metrics = metrics
        self._log: PredictionLog | None = None
        self._kept: list[Answered] = []
        self.log = log
        self._counting = type(metrics) is not QuietMetrics
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
        quiet = type(self.metrics) is QuietMetrics
        self.idle = quiet and (log is None or log.sample <= 0.0)
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
        ``revision``, 0 when it named the version)."""
        kept = self._kept
        kept.append(
            (manifest, revision, rows, started, seconds, request_id, protocol, inputs, answer)
        )
        if len(kept) >= FOLD_EVERY:
            self.fold()

    def __len__(self) -> int:
        return len(self._kept)

    def fold(self) -> None:
        """Count and log what was answered since the last fold."""
        kept = self._kept
        if not kept:
            return
        self._kept = []
        try:
            for group in _groups(kept):
                self._fold(group)
        except Exception:  # counting must never fail the request that happened to fold
            logger.exception("could not count or log %d answered request(s)", len(kept))

    def _fold(self, group: Sequence[Answered]) -> None:
        """Requests answered by one version, sent by one policy revision."""
        manifest, revision = group[0][0], group[0][1]
        _, _, rows, started, seconds, ids, protocols, inputs, answers = zip(*group, strict=True)
        if self._counting:
            windows = self.metrics.windows
            model, version = manifest.model, manifest.version
            if windows is None:
                self.metrics.add(model, version, revision, None, Answers.of(sum(rows), seconds))
            else:
                for minute, part in _by_minute(windows, group):
                    kept = [entry[4] for entry in part] if part is not group else seconds
                    counted = Answers.of(sum(entry[2] for entry in part), kept)
                    self.metrics.add(model, version, revision, minute, counted)
        log = self._log
        if log is not None:
            ended = np.add(started, seconds)
            log.record_many(manifest, ids, protocols, ended, np.asarray(seconds), inputs, answers)


def _groups(kept: list[Answered]) -> Iterable[list[Answered]]:
    """``kept`` by version and policy revision (usually one group: ``kept`` itself)."""
    manifest, revision = kept[0][0], kept[0][1]
    if all(entry[0] is manifest and entry[1] == revision for entry in kept):
        return (kept,)
    groups: dict[tuple[int, int], list[Answered]] = {}
    for entry in kept:
        key = (id(entry[0]), entry[1])  # by identity: a manifest's hash walks all its fields
        group = groups.get(key)
        if group is None:
            groups[key] = [entry]
        else:
            group.append(entry)
    return groups.values()


def _by_minute(
    windows: StatsWindows, group: Sequence[Answered]
) -> Iterable[tuple[int, Sequence[Answered]]]:
    """``group`` by the minute each request ended in (usually one: ``group`` itself; the
    requests are in the order they ended)."""
    first = windows.minute_of(group[0][3] + group[0][4])
    if windows.minute_of(group[-1][3] + group[-1][4]) == first:
        return ((first, group),)
    minutes: dict[int, list[Answered]] = {}
    for entry in group:
        minutes.setdefault(windows.minute_of(entry[3] + entry[4]), []).append(entry)
    return minutes.items()
