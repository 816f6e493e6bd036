"""``gristmill schedules``: each recorded schedule, its next tick and what its last tick did."""

from __future__ import annotations

import json
from datetime import datetime
from typing import TYPE_CHECKING, Annotated, Any

import typer

from gristmill.cli.console import console
from gristmill.cli.settings import stop_if_nothing_yet
from gristmill.cli.tables import print_table

if TYPE_CHECKING:
    from gristmill.runtime.schedule_views import ScheduleView
    from gristmill.stores.schedules import Tick


def schedules_command(
    ctx: typer.Context,
    as_json: Annotated[bool, typer.Option("--json", help="Print the schedules as JSON.")] = False,
) -> None:
    """List the pipelines' schedules: what each does, when, its next tick, its last tick.

    A pipeline's schedules are those of the spec last given for it (`run`, `ingest`,
    `worker --spec`, ...): a source's `schedule:` ingests it again, `score: {on: schedule}`
    scores the newest input. `gristmill worker --all` (or `--stage scheduler`) fires them,
    each tick once however many workers run. Times are UTC.
    """
    stop_if_nothing_yet(ctx, listing=True, as_json=as_json)
    from datetime import UTC

    from gristmill.cli.runs import stale_window
    from gristmill.cli.settings import opened_metadata
    from gristmill.runtime.schedule_views import schedule_views

    with opened_metadata(ctx) as metadata:
        views = schedule_views(metadata, datetime.now(UTC), stale_window(ctx))
    if as_json:
        console.print_json(json.dumps([_as_json(view) for view in views], default=str))
        return
    if not views:
        console.print(
            "no schedules; give a source `schedule: CRON` or the spec `score: {on: schedule, "
            "every: 1h}`, and record the spec (gristmill run / ingest --queue / worker --spec)"
        )
        return
    _print_table(views)


def _print_table(views: list[ScheduleView]) -> None:
    from rich.table import Table

    table = Table()
    for name in ("schedule", "does", "when (UTC)", "next tick", "last tick", "last fired"):
        table.add_column(name)
    for view in views:
        schedule, last = view.schedule, view.last
        table.add_row(
            schedule.key,
            _does(view),
            schedule.timing,
            _time(view.next_tick),
            "never" if last is None else f"{_time(last.tick_at)} {_outcome(last)}",
            _fired(view),
        )
    print_table(table, console)


def _does(view: ScheduleView) -> str:
    schedule = view.schedule
    if schedule.action == "ingest":
        return f"ingest {schedule.target}"
    return f"score {schedule.target} with {schedule.model}"


def _outcome(tick: Tick) -> str:
    """``fired``, or ``skipped: <why, in a few words>`` (``--json`` has the whole detail)."""
    return "fired" if tick.outcome == "fired" else f"skipped: {tick.detail.split(':')[0]}"


def _fired(view: ScheduleView) -> str:
    fired = view.fired
    if fired is None:
        return "-"
    what = "job" if view.schedule.action == "score" else "run"
    batches = f", batch {', '.join(view.batches)}" if view.batches else ""
    return f"{_time(fired.tick_at)} {what} {fired.ref} {view.state}{batches}"


def _time(moment: datetime) -> str:
    return f"{moment:%Y-%m-%d %H:%M:%S}"


def _as_json(view: ScheduleView) -> dict[str, Any]:
    from dataclasses import asdict

    body = asdict(view)
    for tick in ("last", "fired"):
        if body[tick] is not None:
            body[tick].pop("events", None)
    return body


def register(app: typer.Typer) -> None:
    app.command("schedules", rich_help_panel="Run")(schedules_command)
