"""A model's last day of serving as a picture: requests, server errors and latency
percentiles per minute, a line per version. The file's suffix names the format (``.png``,
``.svg``, ``.pdf``, ``.jpg``; none: PNG); ``chart_format`` refuses another, and a folder.

Drawn with matplotlib's object API on the Agg canvas (no display, no pyplot state), which
is imported when a chart is drawn: ``gristmill monitor`` without ``--chart`` never loads it.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from gristmill.errors import ConfigError
from gristmill.runtime.serving_views import HISTORY, ServingReport

MARGINS = {"left": 0.08, "right": 0.84, "bottom": 0.07, "top": 0.94, "hspace": 0.25}
FORMATS = {"": "png", ".png": "png", ".svg": "svg", ".pdf": "pdf", ".jpg": "jpg", ".jpeg": "jpg"}


def chart_format(path: Path | str, *, option: str = "--chart") -> str:
    """The format a chart written to ``path`` takes, by its suffix; ``ConfigError`` naming
    ``option`` for a folder or a suffix no format has."""
    target = Path(path)
    if target.is_dir():
        raise ConfigError(
            f"{option} {target} is a folder; give the chart's file name, e.g. "
            f"{target / 'serving.png'}"
        )
    chosen = FORMATS.get(target.suffix.lower())
    if chosen is None:
        known = ", ".join(s for s in FORMATS if s)
        raise ConfigError(
            f"{option} {target}: {target.suffix!r} is not a picture format a chart is written "
            f"in; end the name with one of {known}"
        )
    return chosen


def draw_serving_chart(report: ServingReport, path: Path | str) -> Path:
    """Draw ``report``'s per-minute figures into ``path`` (in the format of its suffix,
    ``chart_format``; its folder is created, a file there replaced): three panels sharing
    the time axis (UTC) — requests per minute, server errors per minute, and p50 (solid) /
    p99 (dashed) latency in milliseconds."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.ticker import FuncFormatter

    target = Path(path)
    kind = chart_format(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    figure = Figure(figsize=(11, 8))
    FigureCanvasAgg(figure)
    figure.subplots_adjust(**MARGINS)
    requests, errors, latency = figure.subplots(3, 1, sharex=True)
    for index, served in enumerate(report.versions):
        color = f"C{index % 10}"
        times = [m.start for m in served.minutes]
        label = f"v{served.version}" + (f" ({served.role})" if served.role else "")
        requests.plot(times, [m.requests for m in served.minutes], color=color, label=label)
        errors.plot(times, [m.errors for m in served.minutes], color=color, label=label)
        # only minutes with requests: a line through them, and a dot on each (a minute
        # alone between idle ones would draw nothing as a line)
        timed = [m for m in served.minutes if m.p50 is not None and m.p99 is not None]
        at = [m.start for m in timed]
        style = {"color": color, "marker": ".", "markersize": 2, "linewidth": 1}
        latency.plot(at, [_ms(m.p50) for m in timed], **style, label=f"v{served.version} p50")
        latency.plot(
            at, [_ms(m.p99) for m in timed], **style, linestyle="--", label=f"v{served.version} p99"
        )
    if any(m.p50 is not None for served in report.versions for m in served.minutes):
        latency.set_yscale("log")
        plain = FuncFormatter(lambda value, _: f"{value:g}")
        latency.yaxis.set_major_formatter(plain)
        latency.yaxis.set_minor_formatter(plain)
    _frame(requests, "Requests per minute", "requests")
    _frame(errors, "Server errors (5xx) per minute", "errors")
    _frame(latency, "Latency per minute, p50 and p99 (estimated from buckets)", "ms")
    latency.set_xlim(report.until - HISTORY, report.until)  # the whole day, even if idle
    latency.set_xlabel("time (UTC)")
    figure.suptitle(
        f"{report.model}: serving over the last day, to {report.until:%Y-%m-%d %H:%M} UTC"
    )
    figure.savefig(target, format=kind, dpi=100)
    return target


def _ms(seconds: float | None) -> float:
    return math.nan if seconds is None else seconds * 1000.0  # None is left out before


def _frame(ax: Any, title: str, unit: str) -> None:
    ax.set_title(title, fontsize=10, loc="left")
    ax.set_ylabel(unit)
    ax.grid(True, alpha=0.3)
    if ax.get_legend_handles_labels()[0]:
        ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8, frameon=False)
