"""Batch scoring verbs: ``score`` an input with a registered model, list the ``jobs``.

``gristmill score`` runs the job in this process (partitions on the configured executor),
with a progress bar by partition and a summary at the end; the job is recorded in the
metadata store like one a worker or the server runs, so ``gristmill jobs`` shows them all.
"""

from __future__ import annotations

import json
import re
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table
from rich.text import Text

from gristmill.cli.console import console
from gristmill.cli.scoring import MODEL_HELP, check_output_folder
from gristmill.cli.settings import opened_metadata, settings_from, stop_if_nothing_yet
from gristmill.cli.tables import print_table
from gristmill.errors import ConfigError
from gristmill.stores.scores import INPUT_FORMS, ScoreJob, job_summary

if TYPE_CHECKING:  # the scoring work is imported when a verb runs (`--help` stays fast)
    from rich.progress import Progress

    from gristmill.cli.score_copies import ScoresCopy
    from gristmill.config.settings import Settings
    from gristmill.execution.port import Executor
    from gristmill.features.stores import FeatureStores
    from gristmill.stores.scores import ScoreStore

OUT_FORMATS = (".csv", ".parquet", ".jsonl")
NAMED = 5
JOB_ID = re.compile(r"[A-Za-z0-9_.-]{1,64}")


def score_command(
    ctx: typer.Context,
    model: Annotated[str, typer.Argument(metavar="MODEL", help=MODEL_HELP)],
    source: Annotated[str, typer.Argument(metavar="INPUT", help=f"What to score: {INPUT_FORMS}.")],
    out: Annotated[
        str | None,
        typer.Option(
            "--out",
            "-o",
            help="Also write every score to this .csv, .parquet or .jsonl file; a folder or "
            "fsspec URL without one of those suffixes is used as the score store instead.",
        ),
    ] = None,
    job_id: Annotated[
        str | None,
        typer.Option(
            "--job",
            help="The job's id (default: a new one). Given the id of a job that stopped "
            "(killed, failed), it finishes that job with the version and partitions it began "
            "with, scoring no row twice; a new id names a new job.",
        ),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the job as JSON.")] = False,
) -> None:
    """Score a whole input with a registered model version, in partitions, into the score store.

    The input's features are computed by the version's own fitted pipeline (a feature set
    made by that pipeline is scored as it is). Partitions run in parallel on the executor;
    a row that cannot be scored is counted and named, the rest is scored. The job can be
    followed with `gristmill jobs`; asked again with the same job (`--job ID`) it finishes
    what was left and writes nothing twice.

    \b
        gristmill score churn new_customers.parquet
        gristmill score churn@challenger source:customers        its newest raw batch
        gristmill score churn/3 feature_set:customers_v1 --out scores.parquet
        gristmill score churn new_customers.parquet --job 01J9Z…  finish a stopped job
    """
    from gristmill.cli.score_copies import ScoresCopy
    from gristmill.core.ids import new_id
    from gristmill.runtime.wiring import (
        SCORING_PRELOAD,
        build_executor,
        build_score_store,
        open_stores,
    )
    from gristmill.servables.loading import parse_ref, resolve_version
    from gristmill.stages.score_inputs import resolve_input

    settings = settings_from(ctx)
    as_store = out is not None and Path(out).suffix.lower() not in OUT_FORMATS
    if out is not None and not as_store:
        check_output_folder(out)
    store = build_score_store(settings, out if as_store else None)
    copy = ScoresCopy(out) if out is not None and not as_store else None
    if job_id is not None and not JOB_ID.fullmatch(job_id):
        raise ConfigError(
            f"--job {job_id!r}: a job id is 1 to 64 letters, digits, '_', '-' or '.'; "
            "list jobs with `gristmill jobs`"
        )
    job = ScoreJob(job_id or new_id(), model, source, "queued", datetime.now(UTC))
    started = time.perf_counter()
    executor = build_executor(settings, preload=SCORING_PRELOAD)
    with open_stores(settings) as stores:
        before = stores.metadata.score_jobs.find_job(job.job_id)
        if before is None:
            # what is knowable now is said now: no job is recorded for a model or an input
            # that is not there
            name, which = parse_ref(model)
            resolve_version(stores, name, which)
            resolve_input(stores, source)
            stores.metadata.score_jobs.add_job(job)
        elif (before.model, before.input) != (model, source):
            raise ConfigError(
                f"job {job.job_id} scores {before.input} with {before.model}, not {source} "
                f"with {model}; finish it as it began (gristmill score {before.model} "
                f"{before.input} --job {job.job_id}) or leave out --job for a new job"
            )
        else:
            job = before
        done = _scored(job, settings, stores, store, copy, executor)
    if copy is not None:
        copy.finish(store, done)
    if as_json:
        console.print_json(json.dumps(job_summary(done), default=str))
        return
    for line in _summary(done, time.perf_counter() - started, out):
        console.print(line, highlight=False)


def _scored(
    job: ScoreJob,
    settings: Settings,
    stores: FeatureStores,
    store: ScoreStore,
    copy: ScoresCopy | None,
    executor: Executor,
) -> ScoreJob:
    """``job`` run with a progress bar, held by this process while it runs."""
    from gristmill.runtime.job_leases import holding_job
    from gristmill.runtime.worker import consumer_name
    from gristmill.stages.score_jobs import run_score_job

    with _progress() as progress:
        bar = progress.add_task(f"scoring {job.input} with {job.model}", total=None)

        def show(now: ScoreJob) -> None:
            progress.update(bar, completed=now.partitions_done, total=now.partitions_total)

        executor.open()
        held = holding_job(  # by this process while it runs: killed, the job shows stopped
            stores.metadata.executions,
            job.job_id,
            holder=consumer_name("score"),
            ack_wait=settings.bus.ack_wait,
        )
        try:
            with held:
                done = run_score_job(
                    job,
                    stores,
                    store,
                    executor,
                    partition_rows=settings.scoring.partition_rows,
                    progress=show,
                    sink=None if copy is None else copy.take,
                )
        except BaseException:
            if copy is not None:
                copy.discard()
            raise
        finally:
            executor.close()
    return done


def _progress() -> Progress:
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    return Progress(
        TextColumn("{task.description}", markup=False),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("partitions"),
        TimeElapsedColumn(),
        console=console,
        transient=True,
    )


def _summary(job: ScoreJob, seconds: float, out: str | None) -> list[str]:
    lines = [
        f"scored {job.rows} row(s) of {job.input} with {job.model} (version {job.version}) "
        f"in {seconds:.1f}s: job {job.job_id}",
        f"scores: {job.location}" + (f" and {out}" if out and out != job.location else ""),
    ]
    if job.bad_rows:
        lines.append(f"{job.bad_rows} bad row(s) not scored; the first:")
        lines += [f"  row {e['row']}{_key(e)}: {e['error']}" for e in job.errors[:NAMED]]
    return lines


def _key(error: dict[str, object]) -> str:
    return f" ({error['key']})" if error.get("key") else ""


def jobs_command(
    ctx: typer.Context,
    job_id: Annotated[str | None, typer.Argument(metavar="[JOB]", help="One job, in full.")] = None,
    limit: Annotated[int, typer.Option(min=1, help="Jobs listed.")] = 20,
    as_json: Annotated[bool, typer.Option("--json", help="Print as JSON.")] = False,
) -> None:
    """List batch score jobs (newest first), or show one: state, progress, rows, errors, where.

    A job whose holder is gone — the `gristmill score` process was killed, its worker or
    server died and nobody took it over — is "stopped", never "running": its lease is the
    evidence (its process, on this host, at once). `gristmill score MODEL INPUT --job ID`
    finishes a stopped or failed job, scoring no row twice; `gristmill gc` records the
    stopped ones failed.

    \b
        gristmill jobs
        gristmill jobs 01J9Z3...
    """
    stop_if_nothing_yet(ctx, listing=job_id is None, as_json=as_json)
    from gristmill.cli.runs import stale_window
    from gristmill.runtime.job_views import shown_summary, view_job, view_jobs

    stale, now = stale_window(ctx), datetime.now(UTC)
    with opened_metadata(ctx) as metadata:
        if job_id is not None:
            view = view_job(metadata, metadata.score_jobs.get_job(job_id), now=now, stale=stale)
            if as_json:
                console.print_json(json.dumps(shown_summary(view), default=str))
                return
            for line in describe_job(view.job, view.status, view.why, view.resume):
                console.print(line, highlight=False, soft_wrap=True)
            return
        listed = metadata.score_jobs.list_jobs(limit=limit)
        views = view_jobs(metadata, listed, now=now, stale=stale)
    if as_json:
        console.print_json(json.dumps([shown_summary(v) for v in views], default=str))
        return
    if not views:
        console.print("no score jobs yet; start one with `gristmill score MODEL INPUT`")
        return
    table = Table()
    for name in ("job", "state", "model", "input", "partitions", "rows", "bad rows", "created"):
        table.add_column(name, no_wrap=name == "job")
    for view in views:
        job = view.job
        table.add_row(
            job.job_id,
            Text(view.status, style="bold red") if view.status == "stopped" else view.status,
            job.model + (f" (v{job.version})" if job.version else ""),
            job.input,
            f"{job.partitions_done}/{job.partitions_total}",
            str(job.rows),
            str(job.bad_rows),
            job.created_at.strftime("%Y-%m-%d %H:%M:%S"),
        )
    print_table(table, console)
    for view in views:
        if view.status == "stopped":
            console.print(
                f"job {view.job.job_id} stopped: {view.why}; `{view.resume}` finishes it",
                highlight=False,
                soft_wrap=True,
            )


def describe_job(job: ScoreJob, state: str = "", why: str = "", resume: str = "") -> list[str]:
    """One job, a line per fact; ``state`` as it stands (default: as recorded), ``why`` a
    stopped job stopped and ``resume`` the command that finishes it."""
    state = state or job.state
    lines = [
        f"job {job.job_id}: {state}" + (f" ({why})" if why else ""),
        f"model: {job.model}" + (f" (version {job.version})" if job.version else ""),
        f"input: {job.input}" + (f" ({job.input_kind})" if job.input_kind else ""),
        f"progress: {job.partitions_done}/{job.partitions_total} partitions, {job.rows} rows, "
        f"{job.bad_rows} bad",
        f"where: {job.location or '-'}",
    ]
    if job.error:
        lines.append(f"error: {job.error}")
    lines += [f"  row {e['row']}{_key(e)}: {e['error']}" for e in job.errors[:NAMED]]
    if resume and state in ("stopped", "failed"):
        lines.append(f"finish it: {resume}")
    return lines


def register(app: typer.Typer) -> None:
    app.command("score", rich_help_panel="Models")(score_command)
    app.command("jobs", rich_help_panel="Models")(jobs_command)
