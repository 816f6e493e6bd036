"""``gristmill drift``: a model's drift windows, and the tables ``gristmill monitor`` shows.

``windows_table`` (one row per window and version: rows, files, the columns that drifted)
and ``columns_table`` (one window's columns: method, statistic, threshold, PSI, p-values)
are what any verb showing drift prints; ``drift_command`` reads them through
``runtime.drift_views``.
"""

from __future__ import annotations

import json
from dataclasses import asdict
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table
from rich.text import Text

from gristmill.cli.console import console, styled
from gristmill.cli.settings import stop_if_nothing_yet
from gristmill.cli.tables import print_table
from gristmill.errors import ConfigError

if TYPE_CHECKING:  # read when the verb runs (`--help` stays fast)
    from gristmill.runtime.drift_views import ColumnDrift, WindowDrift


def drift_command(
    ctx: typer.Context,
    model: Annotated[str, typer.Argument(metavar="MODEL", help="The model's registry name.")],
    version: Annotated[
        int | None, typer.Option("--version", "-v", min=1, help="Only this version.")
    ] = None,
    since: Annotated[
        str, typer.Option(help="Windows that end within this long: 90m, 12h, 1d, 2w.")
    ] = "1d",
    as_json: Annotated[bool, typer.Option("--json", help="Print the windows as JSON.")] = False,
) -> None:
    """Show how the inputs and predictions of a model's versions drift from training.

    The monitoring stage (`gristmill worker --stage monitoring`, or `--all`) counts what
    the prediction server logs, per version, in windows of the spec's `monitor.window`
    (1h by default), and compares each input column and the prediction with the version's
    training rows: PSI, KS and chi-square, judged by `monitor.drift`. Each window is
    listed with the columns that drifted; the newest window of each version is shown
    column by column. Times are UTC.

    \b
        gristmill drift churn                    every version, the last day
        gristmill drift churn --version 3 --since 2w
        gristmill drift churn --json
    """
    stop_if_nothing_yet(ctx, listing=False, missing=f"no model named {model!r} in the registry")
    from gristmill.cli.settings import opened_metadata
    from gristmill.config.features import parse_duration
    from gristmill.runtime.drift_views import drift_windows

    try:
        seconds = parse_duration(since)
    except ValueError as exc:
        raise ConfigError(f"--since: {exc}") from exc
    start = datetime.now(UTC) - timedelta(seconds=seconds)
    with opened_metadata(ctx) as metadata:
        views = drift_windows(metadata, model, version, since=start)
    if as_json:
        console.print_json(json.dumps([asdict(v) for v in views], default=str))
        return
    if not views:
        which = model if version is None else f"{model}/{version}"
        console.print(
            f"no drift windows of {which} in the last {since}: the monitoring stage counts "
            "the prediction log (run `gristmill worker --stage monitoring`, or --all, while "
            "`gristmill serve` answers with serve.log_sample above 0)",
            highlight=False,
        )
        return
    print_table(windows_table(views), console)
    for newest in newest_per_version(views):
        print_table(columns_table(newest), console)


def windows_table(views: list[WindowDrift]) -> Table:
    """One row per window and version, oldest first: its rows, files and drifted columns."""
    table = Table(title="drift windows (UTC)")
    for name in ("window", "version", "rows", "files", "judged", "drifted"):
        table.add_column(name, justify="right" if name in ("rows", "files") else "left")
    for view in views:
        judged = sum(1 for c in view.columns if c.judged)
        drifted = ", ".join(_crossing(c) for c in view.columns if c.drifted)
        table.add_row(
            f"{view.window_start:%Y-%m-%d %H:%M} to {view.window_end:%H:%M}",
            str(view.version),
            f"{view.rows:,}",
            str(view.files),
            f"{judged}/{len(view.columns)}",
            styled((drifted, "red")) if drifted else "-",
        )
    return table


def columns_table(view: WindowDrift) -> Table:
    """One window's columns: kind, rows, the deciding method, statistic and threshold, and
    every statistic kept."""
    table = Table(
        title=f"{view.model}/{view.version}, window from {view.window_start:%Y-%m-%d %H:%M} UTC"
    )
    for name in ("column", "kind", "rows", "missing", "method", "value", "threshold", "psi"):
        table.add_column(name, justify="left" if name in ("column", "kind", "method") else "right")
    table.add_column("ks p", justify="right")
    table.add_column("chi2 p", justify="right")
    table.add_column("verdict")
    for column in view.columns:
        table.add_row(
            column.column,
            column.kind,
            f"{column.rows:,}",
            f"{column.missing:,}",
            column.method,
            _number(column.statistic if column.method == "psi" else column.p_value),
            f"{column.threshold:g}",
            _number(column.psi),
            _number(column.ks_pvalue),
            _number(column.chi2_pvalue),
            _verdict(column),
        )
    from gristmill.monitoring.reference_report import IDENTIFIER

    for name, why in view.skipped.items():
        verdict = "not judged (identifier)" if why.startswith(IDENTIFIER) else "not monitored"
        table.add_row(name, "-", *["-"] * 8, styled((f"{verdict}: {why}", "dim")))
    return table


def newest_per_version(views: list[WindowDrift]) -> list[WindowDrift]:
    newest: dict[int, WindowDrift] = {}
    for view in views:  # oldest first: the last one of a version is its newest
        newest[view.version] = view
    return [newest[v] for v in sorted(newest)]


def _crossing(column: ColumnDrift) -> str:
    if column.method == "psi":
        return f"{column.column} (psi {_number(column.statistic)})"
    return f"{column.column} ({column.method} p {_number(column.p_value)})"


def _verdict(column: ColumnDrift) -> Text | str:
    if column.drifted:
        return styled(("drifted", "red"))
    if column.judged:
        return "stable"
    if column.ignored:
        return styled(("not judged (ignored by the spec)", "dim"))
    if column.identifier:
        return styled(("not judged (identifier)", "dim"))
    return styled(("not judged (too few rows)", "dim"))


def _number(value: float | None) -> str:
    return "-" if value is None else f"{value:.3g}"


def register(app: typer.Typer) -> None:
    app.command("drift", rich_help_panel="Models")(drift_command)
