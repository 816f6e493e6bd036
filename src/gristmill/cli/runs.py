"""Runs as ``ls runs`` and ``show RUN`` show them: the status read from their work
(``runtime.run_views``), their executions, and a footer saying what kind of run it is."""

from __future__ import annotations

from collections import Counter
from dataclasses import asdict
from datetime import UTC, datetime, timedelta
from typing import Any

import typer
from rich.table import Table

from gristmill.cli.console import console
from gristmill.cli.settings import settings_from
from gristmill.cli.summary import leaderboard_payload, print_leaderboard
from gristmill.cli.tables import print_table, table, when
from gristmill.runtime.run_views import run_leaderboards, run_view
from gristmill.stores.metadata import MetadataReader, Run
from gristmill.stores.run_status import (
    GC_CLOSER,
    LEGACY_QUEUE_COMMAND,
    QUEUE_COMMAND,
    RunView,
    execution_state,
    stale_after,
)

IN_PROCESS_COMMANDS = ("run", "ingest")  # they ran the stages themselves, as workers do


def stale_window(ctx: typer.Context) -> timedelta:
    """How long past its lease an execution is shown ``stale`` (by the bus's ``ack_wait``)."""
    return stale_after(settings_from(ctx).bus.ack_wait)


def _seconds(run: Run, view: RunView) -> Any:
    """The run's duration: recorded, else from its start to when its work ended."""
    if "seconds" in run.summary:
        return run.summary["seconds"]
    if view.final and view.finished_at is not None:
        return round((view.finished_at - run.started_at).total_seconds(), 3)
    return ""


def list_runs(
    store: MetadataReader, limit: int, stale: timedelta
) -> tuple[list[dict[str, Any]], Table]:
    """The newest ``limit`` runs, as JSON rows and as a table."""
    runs, now = store.runs.list_runs(limit=limit), datetime.now(UTC)
    executions = store.executions.list_executions_of_runs([r.run_id for r in runs])  # at once
    views = {
        r.run_id: run_view(store, r, now=now, stale=stale, executions=executions[r.run_id])
        for r in runs
    }
    rows = [
        {k: v for k, v in asdict(r).items() if k != "summary"}
        | {"status": views[r.run_id].status, "recorded_status": r.status}
        for r in runs
    ]
    shown = table("run", "pipeline", "status", "started", "seconds", ids=("run",))
    for run in runs:
        view = views[run.run_id]
        shown.add_row(
            run.run_id, run.pipeline, view.status, when(run.started_at), str(_seconds(run, view))
        )
    return rows, shown


def run_record(store: MetadataReader, run: Run, stale: timedelta) -> dict[str, Any]:
    """What ``show RUN`` shows (and ``--json`` prints): the run with its status as it
    stands, its executions with theirs, the events still waiting for a worker, its audit
    entries, leaderboards and spec."""
    now, executions = datetime.now(UTC), store.executions.list_executions(run.run_id)
    view = run_view(store, run, now=now, stale=stale, executions=executions)
    record = asdict(run)
    record["status"] = view.status
    if view.status != run.status:
        record["recorded_status"] = run.status
    if run.finished_at is None and view.final:
        record["finished_at"] = view.finished_at
    record["executions"] = [
        asdict(e) | {"state": execution_state(e, now, stale=stale)} for e in executions
    ]
    record["pending"] = view.pending
    record["audit"] = [asdict(a) for a in store.audit.list_entries(subject=run.run_id)]
    record["leaderboards"] = [asdict(r) for r in run_leaderboards(store, run)]
    spec = store.specs.find_spec(run.spec_digest)
    record["spec"] = spec.body if spec else run.summary.get("spec")
    return record


def print_run(record: dict[str, Any]) -> None:
    """Its stage executions, what kind of run it is and how its work stands, its
    leaderboards and its audit entries."""
    shown = table(
        "stage",
        "input",
        "status",
        "outputs",
        "error",
        ids=("outputs",),
        title="executions",
        title_justify="left",
    )
    for e in record["executions"]:
        outputs = [o["payload"].get("batch_id") or o["type"] for o in e["outputs"]]
        held = e["state"] in ("running", "stale") and e.get("holder")
        shown.add_row(
            e["stage"],
            str(e["input_event_id"]),
            f"{e['state']} ({e['holder']})" if held else e["state"],
            "\n".join(map(str, outputs)),
            str(e["error"] or ""),
        )
    if record["executions"]:
        print_table(shown, console)
    for line in footer(record):
        console.print(f"  {line}", highlight=False, soft_wrap=True)
    for board in record["leaderboards"]:
        print_leaderboard(leaderboard_payload(board))
        console.print(
            f"every picture, and the curves: gristmill show {board['report_id']}",
            style="dim",
            soft_wrap=True,
        )
    for entry in record["audit"]:
        console.print(f"  {when(entry['at'])} {entry['actor']} {entry['action']}", style="dim")


def _told(events: list[dict[str, Any]]) -> str:
    """``type (key)`` of each event, or ``nothing``."""
    return ", ".join(f"{e.get('type')} ({e.get('key')})" for e in events) or "nothing"


def footer(record: dict[str, Any]) -> list[str]:
    """What kind of run it is (who recorded it, what it announced, who does its work), how
    the work of a run that travels on the bus stands, and how ``gc`` closed it, if it did."""
    summary = record["summary"]
    command, announced = summary.get("command"), summary.get("announced")
    if command in (QUEUE_COMMAND, LEGACY_QUEUE_COMMAND):
        told = _told(announced) if announced else "its sources' source.available"
        lines = [
            f"queued by `gristmill {QUEUE_COMMAND}`, which announced {told}; "
            "workers (`gristmill worker`) do its work",
            *_work(record),
        ]
    elif announced is not None:
        lines = [
            f"run by `gristmill {command or 'run'}`, which announced {_told(announced)} and "
            "ran the stages in its own process",
            *_work(record),
        ]
    elif command:
        lines = [
            f"recorded by `gristmill {command}`, which announced "
            f"{_told(summary.get('outputs', []))} (it did its work in its own process)"
        ]
    else:
        lines = []
    return lines + ([summary["note"]] if summary.get("note") else [])


def _work(record: dict[str, Any]) -> list[str]:
    """How the work of a run followed through its executions stands."""
    executions = record["executions"]
    counts = Counter(o["type"] for e in executions for o in e["outputs"])
    lines = []
    if counts:
        told = ", ".join(f"{t} x{n}" for t, n in counts.items())
        lines.append(f"its stages announced {told}")
    if record["pending"]:
        types = {a["id"]: a["type"] for a in record["summary"].get("announced", [])}
        types |= {o["id"]: o["type"] for e in executions for o in e["outputs"] if "id" in o}
        unpublished = {  # recorded by an execution, yet not on the bus (ADR 14's outbox)
            o["id"]: e["execution_id"]
            for e in executions
            if e.get("published_at") is None and e["status"] != "running"
            for o in e["outputs"]
            if "id" in o
        }
        for event_id in record["pending"]:
            if event_id in unpublished:
                lines.append(
                    f"{types.get(event_id, 'event')} {event_id} was announced by execution "
                    f"{unpublished[event_id]} but not yet published; a worker will publish it "
                    "when the bus is back"
                )
        if waiting_ids := [i for i in record["pending"] if i not in unpublished]:
            waiting = ", ".join(f"{types.get(i, 'event')} {i}" for i in waiting_ids)
            lines.append(f"waiting for a worker: {waiting} (start one: `gristmill worker --all`)")
    ended = record["status"] in ("succeeded", "failed", "partial")
    recorded = record.get("recorded_status")
    if ended and recorded == "running":
        lines.append(
            f"its work ended: {record['status']} (its record says running until "
            "`gristmill gc` closes it)"
        )
    elif recorded and record["summary"].get("note", "").endswith(f"(closed by {GC_CLOSER})"):
        since = f"ended: {record['status']}" if ended else f"is {record['status']}"
        lines.append(f"{GC_CLOSER} closed it as {recorded}; its work since then {since}")
    return lines
