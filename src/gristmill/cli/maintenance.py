"""``gristmill gc``: clear what crashes leave behind (temporary files, abandoned runs)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated

import typer

from gristmill.cli.console import console
from gristmill.cli.settings import settings_from
from gristmill.config.features import parse_duration
from gristmill.errors import ConfigError
from gristmill.runtime.wiring import build_metadata, build_raw
from gristmill.stores.metadata import MetadataStore


def gc(
    ctx: typer.Context,
    older_than: Annotated[
        str, typer.Option(help="Only what is older than this: 90s, 15m, 12h, 1d.")
    ] = "1h",
    dry_run: Annotated[bool, typer.Option(help="Only say what would be done.")] = False,
) -> None:
    """Remove what crashed writers left in the raw store, close abandoned runs, and mark
    stale stage executions failed.

    A write killed midway leaves a temporary directory (never visible as a batch); a run
    whose process died stays "running"; so does a stage execution whose worker was killed
    when no other worker took its work over (`ls runs` and `show RUN` call it "stale"). All
    are safe to clear once older than any write, run or lease still in progress.

    \b
        gristmill gc --dry-run
        gristmill gc --older-than 6h
    """
    try:
        seconds = parse_duration(older_than)
    except ValueError as exc:
        raise ConfigError(f"--older-than: {exc}") from None
    settings = settings_from(ctx)
    settings.home.mkdir(parents=True, exist_ok=True)
    metadata = build_metadata(settings)
    metadata.open()
    try:
        raw = build_raw(settings, metadata)
        sweep = getattr(raw, "sweep", None)
        leftovers: list[str] = []
        if sweep is not None and not dry_run:
            leftovers = sweep(older_than=seconds)
        cutoff = datetime.now(UTC) - timedelta(seconds=seconds)
        stale = [
            run
            for run in metadata.runs.list_runs(limit=1000)
            if run.status == "running" and run.started_at < cutoff
        ]
        for run in stale:
            console.print(f"{'would close' if dry_run else 'closing'} abandoned run {run.run_id}")
            if not dry_run:
                metadata.runs.finish_run(
                    run.run_id, "failed", {**run.summary, "note": "abandoned (closed by gc)"}
                )
        swept = _sweep_executions(metadata, cutoff, dry_run=dry_run)
    finally:
        metadata.close()
    for path in leftovers:
        console.print(f"removed {path}", highlight=False)
    verb = "would be checked" if dry_run else "removed"
    console.print(
        f"{len(leftovers)} leftover(s) {verb}; {len(stale)} abandoned run(s); "
        f"{swept} stale execution(s)"
    )


def _sweep_executions(metadata: MetadataStore, cutoff: datetime, *, dry_run: bool) -> int:
    """Mark ``running`` executions whose lease expired before ``cutoff`` failed; how many."""
    swept = 0
    for execution in metadata.executions.list_stale_executions(cutoff):
        lease = execution.lease_expires_at
        held = f"held by {execution.holder}" if execution.holder else "recorded before leases"
        expired = f"expired {lease:%Y-%m-%d %H:%M:%S} UTC" if lease else "never renewed"
        console.print(
            f"{'would mark' if dry_run else 'marking'} stale execution {execution.execution_id} "
            f"({execution.stage}, run {execution.run_id}, {held}, lease {expired}) failed",
            highlight=False,
        )
        if dry_run:
            swept += 1
            continue
        reason = (
            f"abandoned: its lease {expired} ({held}) and no worker took the work over; "
            "marked failed by gristmill gc"
        )
        if metadata.executions.abandon_execution(
            execution.execution_id, reason=reason, expired_before=cutoff
        ):
            swept += 1
    return swept


def register(app: typer.Typer) -> None:
    app.command(rich_help_panel="Inspect")(gc)
