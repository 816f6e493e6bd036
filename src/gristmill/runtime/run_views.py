"""How recorded runs stand now: their work read from the metadata store, by the one rule in
``stores.run_status``, with the event types this build's stages consume."""

from __future__ import annotations

import os
import socket
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from gristmill.core.events import (
    FEATURES_GENERATED,
    MODEL_EVALUATED,
    MODEL_TRAINED,
    RAW_INGESTED,
    SCORES_REQUESTED,
    SOURCE_AVAILABLE,
)
from gristmill.stores.metadata import MetadataStore, Run, StageExecution
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


def run_view(
    metadata: MetadataStore,
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
