"""The server's Prometheus metrics, kept in plain counters and written as Prometheus text.

Per ``(model_name, model_version)``: requests (answered, failed, or overtaken by the next
version at their latency budget), errors (every failed prediction request, 4xx included,
with its ``status``; a request that failed before a version was found, such as an unknown
model or a missing token, under empty model labels), latency (a histogram in seconds), rows
scored, batch sizes (rows per call of the model: a micro-batch's size, 1 for a one-row
request scored alone, a request's rows otherwise; a cache hit is no call), cache hits,
fallbacks (requests the version passed on to the next of its traffic policy's fallback
chain), latency budget misses and shadow scorings (done, failed, dropped). Answered requests
are added in bulk (``add``, from the server's tally, ADR 34: one histogram count for a few
hundred requests), the rest one by one (a dict lookup and a few additions on the event
loop's thread, no lock, no label object per call): cheaper than a general client library on
the request path. Reading (``render``) first folds what the tally holds. The latency min/max
gauges cost the request path nothing more: they are read, when rendered, from ``windows``
(the lowest and highest latency of this minute and the one before), and left out when there
are none (serving stats off: ``serve.stats_flush_seconds = 0``). Each server process keeps
its own figures, so a scrape of a multi-worker server sees the worker that answered it;
``process`` (its pid) is a label, so their series never mix. The same figures (but shadows'
and batch sizes) also go to ``windows`` (``StatsWindows``, when given), per minute and per
the traffic policy ``revision`` that sent the request (0: it named the version), to be
recorded in the metadata store where they sum over replicas."""

from __future__ import annotations

import operator
import os
from bisect import bisect_left
from collections.abc import Callable
from dataclasses import dataclass, field

from gristmill.server.stats_windows import Answers, StatsWindows
from gristmill.stores.serving_stats import LATENCY_BUCKETS

BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256)
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


@dataclass
class _Histogram:
    bounds: tuple[float, ...]
    counts: list[int] = field(default_factory=list)
    total: float = 0.0
    count: int = 0

    def __post_init__(self) -> None:
        self.counts = [0] * (len(self.bounds) + 1)

    def observe(self, value: float) -> None:
        self.counts[bisect_left(self.bounds, value)] += 1
        self.total += value
        self.count += 1

    def add(self, answers: Answers) -> None:
        self.counts = list(map(operator.add, self.counts, answers.buckets))
        self.total += answers.latency_sum
        self.count += answers.requests

    def lines(self, name: str, labels: str) -> list[str]:
        out = []
        running = 0
        for bound, count in zip(self.bounds, self.counts, strict=False):
            running += count
            out.append(f'{name}_bucket{{{labels},le="{bound}"}} {running}')
        out.append(f'{name}_bucket{{{labels},le="+Inf"}} {self.count}')
        out.append(f"{name}_sum{{{labels}}} {self.total}")
        out.append(f"{name}_count{{{labels}}} {self.count}")
        return out


@dataclass
class _Series:
    requests: int = 0
    errors: dict[int, int] = field(default_factory=dict)  # by HTTP status
    rows: int = 0
    cache_hits: int = 0
    fallbacks: int = 0
    budget_misses: int = 0
    shadow_requests: int = 0
    shadow_errors: int = 0
    shadow_dropped: int = 0
    latency: _Histogram = field(default_factory=lambda: _Histogram(LATENCY_BUCKETS))
    batches: _Histogram = field(default_factory=lambda: _Histogram(BATCH_BUCKETS))


def _escaped(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


class Metrics:
    """Counters per model version; ``render`` writes them in the Prometheus text format."""

    def __init__(self, windows: StatsWindows | None = None) -> None:
        self._series: dict[tuple[str, str], _Series] = {}
        self._process = str(os.getpid())
        self.windows = windows
        self.before_read: Callable[[], None] = _nothing
        """Called before the figures are read: what counts requests in bulk (``tally``)
        folds what it holds."""

    def _of(self, model: str, version: int | str) -> _Series:
        key = (model, str(version))
        series = self._series.get(key)
        if series is None:
            series = self._series[key] = _Series()
        return series

    def answered(
        self, model: str, version: int, rows: int, seconds: float, revision: int = 0
    ) -> None:
        """One request answered, now, in ``seconds``, with ``rows`` rows."""
        self.add(model, version, revision, None, Answers.of(rows, (seconds,)))

    def add(
        self, model: str, version: int, revision: int, minute: int | None, answers: Answers
    ) -> None:
        """Requests answered (in ``minute`` of ``windows``, ``StatsWindows.minute_of``;
        ``None``: this one)."""
        series = self._of(model, version)
        series.requests += answers.requests
        series.rows += answers.rows
        series.latency.add(answers)
        if self.windows is not None:
            self.windows.add(model, version, revision, minute, answers)

    def failed(
        self, model: str, version: int | str, seconds: float, status: int, revision: int = 0
    ) -> None:
        series = self._of(model, version)
        series.requests += 1
        series.errors[status] = series.errors.get(status, 0) + 1
        series.latency.observe(seconds)
        if self.windows is not None:
            self.windows.failed(model, version, seconds, status, revision)

    def batched(self, model: str, version: int, size: int) -> None:
        self._of(model, version).batches.observe(size)

    def cache_hit(self, model: str, version: int, revision: int = 0) -> None:
        self._of(model, version).cache_hits += 1
        if self.windows is not None:
            self.windows.cache_hit(model, version, revision)

    def fell_back(self, model: str, version: int, revision: int = 0) -> None:
        """``version`` failed or was not loaded, and the next in its fallback chain was asked."""
        self._of(model, version).fallbacks += 1
        if self.windows is not None:
            self.windows.fell_back(model, version, revision)

    def budget_missed(
        self, model: str, version: int, revision: int = 0, *, overtaken: bool = False
    ) -> None:
        """``version`` did not answer within the request's latency budget: it answered late,
        or (``overtaken``) the next version of its chain answered instead, and the request
        counts as one of its requests (untimed: it gave no answer)."""
        series = self._of(model, version)
        series.budget_misses += 1
        if overtaken:
            series.requests += 1
        if self.windows is not None:
            self.windows.budget_missed(model, version, revision, overtaken=overtaken)

    def shadow_answered(self, model: str, version: int, seconds: float) -> None:
        self._of(model, version).shadow_requests += 1

    def shadow_failed(self, model: str, version: int) -> None:
        series = self._of(model, version)
        series.shadow_requests += 1
        series.shadow_errors += 1

    def shadow_dropped(self, model: str, version: int) -> None:
        self._of(model, version).shadow_dropped += 1

    def render(self) -> str:
        self.before_read()
        heads = {
            "requests": (
                "counter",
                "Prediction requests that reached this version: answered, failed, or overtaken "
                "at their latency budget.",
            ),
            "errors": ("counter", "Prediction requests that failed, by HTTP status (4xx too)."),
            "rows": ("counter", "Rows scored."),
            "cache_hits": ("counter", "Answers taken from the prediction cache."),
            "fallbacks": (
                "counter",
                "Requests this version failed (5xx) or could not take, passed to its fallback.",
            ),
            "budget_misses": (
                "counter",
                "Requests this version did not answer within their latency budget.",
            ),
            "shadow_requests": ("counter", "Requests scored by this version as a shadow."),
            "shadow_errors": ("counter", "Shadow scorings of this version that failed."),
            "shadow_dropped": ("counter", "Shadow scorings dropped: the shadow queue was full."),
            "latency": ("histogram", "Seconds from parsed request to answer."),
            "latency_min": ("gauge", "Lowest latency (seconds) in this minute and the one before."),
            "latency_max": (
                "gauge",
                "Highest latency (seconds) in this minute and the one before.",
            ),
            "batch": (
                "histogram",
                "Rows per call of the model: a micro-batch's size, else the request's rows.",
            ),
        }
        names = {
            "requests": "gristmill_requests_total",
            "errors": "gristmill_errors_total",
            "rows": "gristmill_rows_total",
            "cache_hits": "gristmill_cache_hits_total",
            "fallbacks": "gristmill_fallbacks_total",
            "budget_misses": "gristmill_latency_budget_misses_total",
            "shadow_requests": "gristmill_shadow_requests_total",
            "shadow_errors": "gristmill_shadow_errors_total",
            "shadow_dropped": "gristmill_shadow_dropped_total",
            "latency": "gristmill_request_latency_seconds",
            "latency_min": "gristmill_request_latency_min_seconds",
            "latency_max": "gristmill_request_latency_max_seconds",
            "batch": "gristmill_batch_size",
        }
        ranges = self.windows.latency_range() if self.windows is not None else {}
        lines: list[str] = []
        for key, (kind, text) in heads.items():
            name = names[key]
            lines += [f"# HELP {name} {text}", f"# TYPE {name} {kind}"]
            for (model, version), series in sorted(self._series.items()):
                labels = (
                    f'model_name="{_escaped(model)}",model_version="{_escaped(version)}",'
                    f'process="{self._process}"'
                )
                if key == "latency":
                    lines += series.latency.lines(name, labels)
                elif key == "batch":
                    lines += series.batches.lines(name, labels)
                elif key in ("latency_min", "latency_max"):
                    seen = ranges.get((model, int(version))) if version.isdigit() else None
                    if seen is not None:
                        value = seen[1] if key == "latency_max" else seen[0]
                        lines.append(f"{name}{{{labels}}} {value}")
                elif key == "errors":
                    lines += [
                        f'{name}{{{labels},status="{status}"}} {count}'
                        for status, count in sorted(series.errors.items())
                    ]
                else:
                    value = getattr(series, key)
                    lines.append(f"{name}{{{labels}}} {value}")
        return "\n".join(lines) + "\n"


def _nothing() -> None:
    return


class QuietMetrics(Metrics):
    """Counts nothing (``serve.metrics = false``): ``/metrics`` answers no series, and no
    serving figures are recorded. For measuring what counting costs, or for a server whose
    figures nobody reads."""

    def __init__(self) -> None:
        super().__init__(None)

    def answered(
        self, model: str, version: int, rows: int, seconds: float, revision: int = 0
    ) -> None:
        return

    def add(
        self, model: str, version: int, revision: int, minute: int | None, answers: Answers
    ) -> None:
        return

    def failed(
        self, model: str, version: int | str, seconds: float, status: int, revision: int = 0
    ) -> None:
        return

    def batched(self, model: str, version: int, size: int) -> None:
        return

    def cache_hit(self, model: str, version: int, revision: int = 0) -> None:
        return

    def fell_back(self, model: str, version: int, revision: int = 0) -> None:
        return

    def budget_missed(
        self, model: str, version: int, revision: int = 0, *, overtaken: bool = False
    ) -> None:
        return
