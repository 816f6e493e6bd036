"""``gristmill gc``: clear what crashes leave behind (stale executions, runs nobody closed,
temporary files) and history past its retention (serving stats); the decisions are
``runtime.sweep``'s."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Annotated

import typer

from gristmill.cli.console import console
from gristmill.cli.settings import settings_from
from gristmill.errors import ConfigError

if TYPE_CHECKING:  # the sweep's work is imported when `gc` runs (`--help` stays fast)
    from gristmill.config.settings import Settings
    from gristmill.runtime.sweep import RunDecision, SweptExecution
    from gristmill.stores.metadata import MetadataStore


def gc(
    ctx: typer.Context,
    older_than: Annotated[
        str,
        typer.Option(
            help="Temporary files and abandoned runs older than this: 90s, 15m, 12h, 1d "
            "(stale executions are swept by their lease instead)."
        ),
    ] = "1h",
    dry_run: Annotated[bool, typer.Option(help="Only say what would be done.")] = False,
) -> None:
    """Mark stale stage executions failed, close runs still recorded "running", remove
    what crashed writers left in the raw store, and prune old serving stats.

    \b
    - A stage execution whose worker died with nobody to take its work over stays
      "running" (`ls runs` and `show RUN` call it "stale"). Its lease is the evidence: one
      more than max(60 s, 2 x bus.ack_wait) past is swept whatever its age (use the
      bus.ack_wait your workers use).
    - A run still recorded "running" whose work has all finished (a queued run: `ingest
      --queue` and workers) is closed with the status its work shows: succeeded, partial
      or failed.
    - A run is closed as abandoned (failed) only when none of its work runs, the process
      that ran it is gone (when it can be seen from here), its work is unfinished (events
      no worker took up) and it is older than --older-than.
    - A score job still recorded "running" whose holder is gone (its `gristmill score`
      process, worker or server died; `gristmill jobs` shows it "stopped") is recorded
      failed, as abandoned, whatever its age; `gristmill score MODEL INPUT --job ID`
      finishes it.
    - A write killed midway leaves a temporary directory in the raw store (never visible
      as a batch), removed once older than --older-than.
    - A prediction server killed (kill -9) leaves its bus consumer group serve-HOST-PID;
      those of this host whose process is gone are deleted (run gc on each serving host).
    - Serving stats (what `gristmill monitor` shows) older than serve.stats_keep_days
      (default 30; 0 keeps all) are removed, of every model.

    \b
        gristmill gc --dry-run
        gristmill gc --older-than 6h
    """
    import asyncio

    from gristmill.config.features import parse_duration
    from gristmill.runtime.sweep import (
        close_run,
        decide_runs,
        prune_serving_stats,
        stale_executions,
        sweep_executions,
    )
    from gristmill.runtime.wiring import build_metadata, build_raw
    from gristmill.stores.run_status import stale_after

    try:
        seconds = parse_duration(older_than)
    except ValueError as exc:
        raise ConfigError(f"--older-than: {exc}") from None
    settings = settings_from(ctx)
    settings.home.mkdir(parents=True, exist_ok=True)
    now, stale = datetime.now(UTC), stale_after(settings.bus.ack_wait)
    metadata = build_metadata(settings)
    metadata.open()
    try:
        raw = build_raw(settings, metadata)
        sweep = getattr(raw, "sweep", None)
        leftovers: list[str] = []
        if sweep is not None and not dry_run:
            leftovers = sweep(older_than=seconds)
        found = stale_executions(metadata, now, stale)
        swept = found if dry_run else sweep_executions(metadata, found, now, stale)
        _say_swept(swept, stale, dry_run=dry_run)
        jobs = _close_stopped_jobs(metadata, now, stale, dry_run=dry_run)  # swept: stopped
        cutoff = now - timedelta(seconds=seconds)
        pretend = found if dry_run else []  # a dry run counts them failed, as gc would mark them
        decisions = decide_runs(metadata, now=now, stale=stale, cutoff=cutoff, swept=pretend)
        closed = [d for d in decisions if d.status is not None]
        if not dry_run:
            closed = [d for d in closed if close_run(metadata, d)]
        keep_days = settings.serve.stats_keep_days
        pruned = prune_serving_stats(metadata, now, keep_days, dry_run=dry_run)
    finally:
        metadata.close()
    groups = asyncio.run(_stale_serve_groups(settings, dry_run=dry_run))
    for decision in decisions:
        _say_run(decision, dry_run=dry_run)
    for group in groups:
        verb = "would delete" if dry_run else "deleted"
        console.print(f"{verb} bus consumer group {group} (its server is gone)", highlight=False)
    for path in leftovers:
        console.print(f"removed {path}", highlight=False)
    if pruned is not None and pruned[1]:
        console.print(
            f"{'would remove' if dry_run else 'removed'} {pruned[1]} serving stats window(s) "
            f"before {pruned[0]:%Y-%m-%d %H:%M} UTC (serve.stats_keep_days = {keep_days:g})",
            highlight=False,
        )
    verb = "would be checked" if dry_run else "removed"
    abandoned = sum(1 for d in closed if d.abandoned)
    console.print(
        f"{len(leftovers)} leftover(s) {verb}; {abandoned} abandoned run(s); "
        f"{len(closed) - abandoned} finished run(s) closed; {len(swept)} stale execution(s); "
        f"{jobs} stopped score job(s)" + (" (dry run: nothing changed)" if dry_run else ""),
        highlight=False,
    )


async def _stale_serve_groups(settings: Settings, *, dry_run: bool) -> list[str]:
    """The consumer groups dead servers of this host left on the bus, deleted unless
    ``dry_run``."""
    from gristmill.runtime.wiring import build_bus
    from gristmill.server.reload import TOPICS, stale_groups

    bus = build_bus(settings)
    await bus.open()
    try:
        stale = await stale_groups(bus)
        if not dry_run:
            for group in stale:
                for topic in TOPICS:
                    await bus.delete_group(group, topic)
    finally:
        await bus.close()
    return stale


def _say_swept(swept: list[SweptExecution], stale: timedelta, *, dry_run: bool) -> None:
    for s in swept:
        e = s.execution
        console.print(
            f"{'would mark' if dry_run else 'marked'} stale execution {e.execution_id} "
            f"({e.stage}{f', run {e.run_id}' if e.run_id else ''}) failed: "
            f"{s.reason.removeprefix('abandoned: ')}",
            highlight=False,
            soft_wrap=True,
        )
    if swept:
        console.print(
            f"(stale: its lease more than {stale.total_seconds():g}s past, by bus.ack_wait)",
            style="dim",
        )


def _close_stopped_jobs(
    metadata: MetadataStore, now: datetime, stale: timedelta, *, dry_run: bool
) -> int:
    """Record the score jobs whose holder is gone failed (``runtime.job_views``), saying
    each; how many."""
    from gristmill.runtime.job_views import close_job, stopped_jobs

    jobs = stopped_jobs(metadata, now, stale)
    if not dry_run:
        jobs = [view for view in jobs if close_job(metadata, view, now)]
    for view in jobs:
        console.print(
            f"{'would record' if dry_run else 'recorded'} stopped score job {view.job.job_id} "
            f"failed: {view.why}; `{view.resume}` finishes it",
            highlight=False,
            soft_wrap=True,
        )
    return len(jobs)


def _say_run(decision: RunDecision, *, dry_run: bool) -> None:
    run_id = decision.run.run_id
    if decision.status is None:
        console.print(f"left run {run_id} open: {decision.why}", style="dim", highlight=False)
        return
    verb = "would close" if dry_run else "closed"
    kind = "abandoned" if decision.abandoned else "finished"
    console.print(
        f"{verb} {kind} run {run_id} as {decision.status}: {decision.why}",
        highlight=False,
        soft_wrap=True,
    )


def register(app: typer.Typer) -> None:
    app.command(rich_help_panel="Inspect")(gc)
