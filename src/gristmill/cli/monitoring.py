"""``gristmill monitor MODEL``: how a model does in production, a section per concern.

Each section is a function that reads through the read side (``runtime.*_views``), prints
its part (or returns it for ``--json``): the serving figures now; drift and live quality
add their sections beside it. What the sections run is imported when the verb runs.
"""

from __future__ import annotations

import dataclasses
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.table import Table

from gristmill.cli.console import console
from gristmill.cli.settings import opened_metadata, stop_if_nothing_yet
from gristmill.cli.tables import print_table

if TYPE_CHECKING:  # imported when the verb runs (`--help` stays fast)
    from gristmill.runtime.serving_views import ServingReport, VersionServing
    from gristmill.stores.metadata import MetadataStore
    from gristmill.stores.serving_figures import Figures

SERVING_NOTE = (
    "Summed over every server from what they recorded (at most serve.stats_flush_seconds "
    "behind). A span counts whole minutes: '1 min' is this minute and the one before. "
    "Errors are server errors (5xx), client errors refused input (4xx); budget misses are "
    "requests not answered within their latency budget (overtaken by the next version, or "
    "answered late). Percentiles are "
    "estimated from latency buckets: the true value lies in the same bucket (--json gives "
    "each one's bounds; docs/monitoring.md)."
)


def monitor(
    ctx: typer.Context,
    model: Annotated[str, typer.Argument(metavar="MODEL", help="Registry name of the model.")],
    version: Annotated[
        int | None,
        typer.Option(
            "--version",
            metavar="V",
            help="Only this version (default: every version that "
            "served in the last day or is deployed).",
        ),
    ] = None,
    chart: Annotated[
        Path | None,
        typer.Option(
            metavar="PATH",
            help="Also draw the last day (requests, server errors, p50/p99 latency per "
            "minute and version) into the file PATH: .png (or no suffix), .svg, .pdf, .jpg.",
        ),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead.")] = False,
) -> None:
    """How a model serves: per version, times served, errors, fallbacks, latency budget
    misses, cache hits and latency (avg, min, max, p50/p90/p99) over the last minute, hour
    and day; then the drift of its inputs and predictions and its live quality per window
    of the last day (from actual outcomes sent back, and a label-free estimate while they
    are late).

    The figures are what every `gristmill serve` process records in the metadata store
    (every serve.stats_flush_seconds), summed over the servers: they outlive restarts. Old
    minutes are pruned by `gristmill gc` (serve.stats_keep_days). Live figures of one
    server process are on its /metrics (Prometheus).

    \b
        gristmill monitor churn                          every version that served
        gristmill monitor churn --version 4              one version
        gristmill monitor churn --chart churn.png        and a chart of the last day
        gristmill monitor churn --json                   for scripts
    """
    from gristmill.runtime.serving_views import serving_report

    if chart is not None:
        from gristmill.runtime.serving_chart import chart_format

        chart_format(chart)  # a folder or an unknown suffix: said before anything is read
    stop_if_nothing_yet(ctx, listing=False, missing=f"no model named {model!r} in the registry")
    until = datetime.now(UTC)
    with opened_metadata(ctx) as store:
        report = serving_report(store, model, version, until=until)
        out: dict[str, Any] = {"model": model, "at": until.isoformat()}
        out["serving"] = serving_section(report, chart, quiet=as_json)
        out["drift"] = drift_section(store, model, version, until, quiet=as_json)
        out["quality"] = quality_section(store, model, version, until, quiet=as_json)
    if as_json:
        console.print_json(json.dumps(out, default=str))


def drift_section(
    store: MetadataStore, model: str, version: int | None, until: datetime, *, quiet: bool
) -> list[dict[str, Any]]:
    """The drift windows of the last day (``docs/monitoring.md#drift``), the newest of each
    version column by column, unless ``quiet``; the section's JSON (``gristmill drift``
    shows other spans)."""
    from gristmill.cli.monitor_drift import columns_table, newest_per_version, windows_table
    from gristmill.runtime.drift_views import drift_windows

    views = drift_windows(store, model, version, since=until - timedelta(days=1))
    if not quiet:
        if views:
            print_table(windows_table(views), console)
            for newest in newest_per_version(views):
                print_table(columns_table(newest), console)
        else:
            console.print(
                f"{model}: no drift windows in the last day — the monitoring stage counts the "
                "prediction log (gristmill worker --all while gristmill serve logs)",
                style="dim",
                highlight=False,
                soft_wrap=True,
            )
    return [dataclasses.asdict(view) for view in views]


def quality_section(
    store: MetadataStore, model: str, version: int | None, until: datetime, *, quiet: bool
) -> dict[str, Any]:
    """The live quality windows of the last day (``docs/monitoring.md#live-quality``):
    printed as a table unless ``quiet``; the section's JSON."""
    since = until - timedelta(days=1)
    counts = store.feedback.counts(model)
    if not counts.received and not store.feedback.list_windows(model, version, since=since):
        # nothing to measure: the estimate's code (numpy, scikit-learn) is not even loaded
        if not quiet:
            console.print(
                f"{model}: no live quality yet — send actual outcomes (POST /v1/feedback, or "
                "gristmill feedback FILE) and run the feedback and live-quality stages "
                "(gristmill worker --all)",
                style="dim",
                highlight=False,
                soft_wrap=True,
            )
        return {"counts": dataclasses.asdict(counts), "waiting_anywhere": None, "windows": []}
    from gristmill.cli.monitor_quality import quality_table, read_quality

    quality = read_quality(store, model, version=version, since=since)
    section: dict[str, Any] = {
        "counts": dataclasses.asdict(quality.counts),
        "waiting_anywhere": quality.waiting_anywhere,
        "windows": [
            {**dataclasses.asdict(row.window), "estimated": row.estimated} for row in quality.rows
        ],
    }
    if not quiet:
        print_table(quality_table(quality), console)
    return section


def serving_section(report: ServingReport, chart: Path | None, *, quiet: bool) -> dict[str, Any]:
    """Print ``report`` as a table per version (unless ``quiet``), draw ``chart`` if asked;
    the section's JSON."""
    section: dict[str, Any] = {
        "policy_revision": report.policy_revision,
        "versions": [_version_json(served) for served in report.versions],
    }
    if chart is not None:
        from gristmill.runtime.serving_chart import draw_serving_chart

        section["chart"] = str(draw_serving_chart(report, chart).resolve())
    if quiet:
        return section
    if not report.versions:
        console.print(
            f"{report.model}: no version served in the last day and none is deployed; deploy "
            f"one (gristmill deploy {report.model} VERSION) and serve it (gristmill serve "
            f"--model {report.model}) — figures are recorded every serve.stats_flush_seconds",
            highlight=False,
            soft_wrap=True,
        )
    for served in report.versions:
        print_table(_table(report.model, served), console)
    if report.versions:
        console.print(SERVING_NOTE, style="dim", highlight=False)
    if "chart" in section:
        console.print(f"chart: {section['chart']}", highlight=False, soft_wrap=True)
    return section


def _table(model: str, served: VersionServing) -> Table:
    title = f"{model}/{served.version}" + (f" — {served.role}" if served.role else "")
    table = Table(title=title, title_justify="left")
    table.add_column("")
    for figures in served.spans:
        table.add_column(_span_label(figures), justify="right")
    rows: list[tuple[str, Any]] = [
        ("requests", lambda f: f"{f.requests:,}"),
        ("per second", lambda f: f"{f.per_second:.3g}"),
        ("errors", _errors),
        ("client errors", lambda f: f"{f.client_errors:,}"),
        ("fallbacks", lambda f: f"{f.fallbacks:,}"),
        ("budget misses", _misses),
        ("cache hits", lambda f: f"{f.cache_hits:,}"),
        ("latency avg", lambda f: _latency(f.latency_mean)),
        ("latency min", lambda f: _latency(f.latency_min)),
        ("latency max", lambda f: _latency(f.latency_max)),
        ("p50", lambda f: _latency(f.p50)),
        ("p90", lambda f: _latency(f.p90)),
        ("p99", lambda f: _latency(f.p99)),
        ("servers", lambda f: str(f.replicas)),
    ]
    for name, cell in rows:
        table.add_row(name, *(cell(f) for f in served.spans))
    return table


def _span_label(figures: Figures) -> str:
    from gristmill.stores.serving_figures import SPANS

    return next(s.label for s in SPANS if s.length == figures.span)


def _errors(figures: Figures) -> str:
    rate = figures.error_rate
    return f"{figures.errors:,}" + (f" ({rate:.1%})" if rate else "")


def _misses(figures: Figures) -> str:
    rate = figures.miss_rate
    return f"{figures.budget_misses:,}" + (f" ({rate:.1%})" if rate else "")


def _latency(seconds: float | None) -> str:
    """Milliseconds to three figures, seconds from 1 s on; ``-`` for none."""
    if seconds is None:
        return "-"
    if seconds >= 1:
        return f"{seconds:.2f} s"
    ms = seconds * 1000
    return f"{ms:.0f} ms" if ms >= 100 else f"{ms:.3g} ms"


def _version_json(served: VersionServing) -> dict[str, Any]:
    from dataclasses import asdict

    from gristmill.stores.serving_figures import SPANS

    spans = {}
    for span, figures in zip(SPANS, served.spans, strict=True):
        values = asdict(figures)
        values["span"] = figures.span.total_seconds()
        values.update(
            per_second=figures.per_second,
            error_rate=figures.error_rate,
            miss_rate=figures.miss_rate,
        )
        spans[span.label] = values
    return {"version": served.version, "role": served.role, "spans": spans}


def register(app: typer.Typer) -> None:
    app.command(rich_help_panel="Monitor")(monitor)
