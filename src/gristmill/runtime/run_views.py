"""How recorded runs stand now: their work read from the metadata store, by the one rule in
``stores.run_status``, with the event types this build's stages consume."""

from __future__ import annotations

import os
import socket
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from gristmill.core.event_types import (
    FEATURES_GENERATED,
    MODEL_EVALUATED,
    MODEL_TRAINED,
    RAW_INGESTED,
    SCORES_REQUESTED,
    SOURCE_AVAILABLE,
)
from gristmill.errors import NotFoundError
from gristmill.stores.metadata import MetadataReader, Run, StageExecution
from gristmill.stores.reports import LEADERBOARD_KIND, Report
from gristmill.stores.run_status import RunView, view_run

# What a run's work goes on through: the event types its stages consume (``gristmill run``
# runs these; ``gristmill worker --all`` too). Named here, not read from the stage classes,
# so that reading a run's status imports no stage (nor the learning libraries); a test
# holds it equal to the ``consumes`` of ``runtime.stages.RUN_STAGES``.
RUN_CONSUMES = frozenset(
    (
        SOURCE_AVAILABLE,
        RAW_INGESTED,
        FEATURES_GENERATED,
        MODEL_TRAINED,
        MODEL_EVALUATED,
        SCORES_REQUESTED,
    )
)

LEADERBOARD_SCAN = 200  # how many of the newest leaderboards are searched for a run's
RUN_SCAN = 50  # how many of the newest runs are searched for the newest leaderboard


def run_view(
    metadata: MetadataReader,
    run: Run,
    *,
    now: datetime,
    stale: timedelta,
    executions: Sequence[StageExecution] | None = None,
) -> RunView:
    """``run`` as it stands (``executions``: its executions, if already read — a listing
    reads those of all its runs at once, ``list_executions_of_runs``). Every reader of a
    run's status (``ls runs``, ``show RUN``, ``gc``) goes through here."""
    if executions is None:
        executions = metadata.executions.list_executions(run.run_id)
    gone = run.status == "running" and process_alive(run) is False
    return view_run(run, executions, now, stale=stale, consumes=RUN_CONSUMES, process_gone=gone)


def process_alive(run: Run) -> bool | None:
    """Whether the process that recorded ``run`` (and does its work) still runs: ``None``
    when that cannot be told here (another host, or a run whose work is done by workers)."""
    process: Any = run.summary.get("process")
    if not isinstance(process, dict):
        return None
    return _alive(process.get("host"), process.get("pid"))


def holder_alive(holder: str | None) -> bool | None:
    """Whether the process named by an execution's ``holder`` (``NAME@HOST:PID``, as
    ``runtime.worker.consumer_name`` makes it) still runs: ``None`` when that cannot be
    told here (another host, or a holder named otherwise)."""
    if not holder or "@" not in holder:
        return None
    host, _, pid = holder.rpartition("@")[2].rpartition(":")
    return _alive(host, pid)


def _alive(host: Any, pid: Any) -> bool | None:
    if host != socket.gethostname():
        return None
    try:
        number = int(pid)
        if number <= 0:  # 0 and -N would name process groups
            return None
        os.kill(number, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process: it exists
        return True
    except (TypeError, ValueError, OSError):
        return None
    return True


def run_leaderboards(store: MetadataReader, run: Run) -> list[Report]:
    """The leaderboard reports of ``run``, oldest first: those its recorded outputs name
    (``model.evaluated`` of its stage executions, or of the command that recorded it), else
    those of the newest ``LEADERBOARD_SCAN`` leaderboards whose run it is."""
    outputs = [o for e in store.executions.list_executions(run.run_id) for o in e.outputs]
    payloads = [o.get("payload", {}) for o in outputs if o.get("type") == MODEL_EVALUATED]
    payloads += [o for o in run.summary.get("outputs", []) if o.get("type") == MODEL_EVALUATED]
    found = []
    for report_id in dict.fromkeys(str(p["report"]) for p in payloads if p.get("report")):
        try:
            found.append(store.reports.get_report(report_id))
        except NotFoundError:  # named, yet not recorded (the metadata store was reset)
            continue
    if found:
        return found
    recent = store.reports.list_reports(kind=LEADERBOARD_KIND, limit=LEADERBOARD_SCAN)
    return [r for r in reversed(recent) if r.run_id == run.run_id]


def newest_leaderboard(store: MetadataReader) -> tuple[Run | None, Report] | None:
    """The leaderboard of the newest run that evaluated (among the ``RUN_SCAN`` newest),
    else the newest leaderboard recorded; ``None`` when there is none."""
    for run in store.runs.list_runs(limit=RUN_SCAN):
        boards = run_leaderboards(store, run)
        if boards:
            return run, boards[-1]
    recent = store.reports.list_reports(kind=LEADERBOARD_KIND, limit=1)
    if not recent:
        return None
    run_id = recent[0].run_id
    return (store.runs.find_run(run_id) if run_id else None), recent[0]
