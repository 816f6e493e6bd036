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


def gc(
    ctx: typer.Context,
    older_than: Annotated[
        str, typer.Option(help="Only what is older than this: 90s, 15m, 12h, 1d.")
    ] = "1h",
    dry_run: Annotated[bool, typer.Option(help="Only say what would be done.")] = False,
) -> None:
    """Remove what crashed writers left in the raw store, and close abandoned runs.

    A write killed midway leaves a temporary directory (never visible as a batch); a run
    whose process died stays "running". Both are safe to clear once older than any write
    or run still in progress.

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
    finally:
        metadata.close()
    for path in leftovers:
        console.print(f"removed {path}", highlight=False)
    verb = "would be checked" if dry_run else "removed"
    console.print(f"{len(leftovers)} leftover(s) {verb}; {len(stale)} abandoned run(s)")


def register(app: typer.Typer) -> None:
    app.command(rich_help_panel="Inspect")(gc)
