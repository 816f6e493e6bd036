"""Recording a run and the spec it follows: what every command that starts work does first.

The spec is kept in the spec store by digest (``stores.specs``) and, unless the run was
started by a schedule, its schedules become its pipeline's (``stores.schedules``).
"""

from __future__ import annotations

import os
import socket
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from gristmill.config.spec import PipelineSpec
from gristmill.core.actor import current_actor
from gristmill.core.events import Event
from gristmill.core.ids import new_id
from gristmill.stores.metadata import AuditEntry, MetadataStore, Run
from gristmill.stores.schedules import spec_schedules
from gristmill.stores.specs import StoredSpec, stored_spec


def start_run(
    metadata: MetadataStore,
    spec: PipelineSpec,
    *,
    actor: str | None = None,
    command: str | None = None,
    folder: Path | None = None,
    spec_file: Path | None = None,
    run_id: str | None = None,
    announced: Sequence[Event] = (),
    in_process: bool = True,
    schedules: bool = True,
    **details: Any,
) -> Run:
    """Record a new run following ``spec`` and audit its start.

    The spec is kept in the spec store by digest (with ``folder``, the folder of its file,
    so modules beside it stay importable) and the run records the digest. Workers find the
    spec of an event through the run its ``correlation_id`` names, so whatever announces
    events for a pipeline (``run``, ``ingest``, ``train``, ``evaluate``) starts one.
    ``spec_file``, the spec's file (its folder is ``folder`` unless given), is recorded in
    the run's summary, so a worker's error about the spec can name it.

    ``announced`` are the events (made with ``run_id``) whose work travels on the bus: the
    run records them so its status can be read from its work (``stores.run_status``).
    ``in_process``: the run's work is done (or followed) by this process, recorded as its
    host and pid so ``gristmill gc`` can tell a live run from an abandoned one.
    ``schedules``: the spec's schedules become its pipeline's (``record_spec``); the runs a
    schedule starts itself leave them alone.
    """
    if spec_file is not None and folder is None:
        folder = spec_file.parent
    stored = record_spec(metadata, spec, folder, schedules=schedules)
    summary: dict[str, Any] = {}
    if spec_file is not None:
        summary["spec_file"] = str(spec_file.resolve())
    if command is not None:
        summary["command"] = command
        details["command"] = command
    if announced:
        summary["announced"] = [{"id": e.id, "type": e.type, "key": e.key} for e in announced]
    if in_process:
        summary["process"] = {"host": socket.gethostname(), "pid": os.getpid()}
    run = Run(
        run_id=run_id or new_id(),
        pipeline=spec.name,
        status="running",
        started_at=datetime.now(UTC),
        spec_digest=stored.digest,
        summary=summary,
    )
    metadata.runs.start_run(run)
    metadata.audit.append(
        AuditEntry(
            entry_id=new_id(),
            at=run.started_at,
            actor=actor or current_actor(),
            action="run.started",
            subject=run.run_id,
            details={"pipeline": spec.name, **details},
        )
    )
    return run


def record_spec(
    metadata: MetadataStore,
    spec: PipelineSpec,
    folder: Path | None = None,
    *,
    schedules: bool = True,
    now: datetime | None = None,
) -> StoredSpec:
    """Keep ``spec`` in the spec store (``folder``: the folder of its file) and, with
    ``schedules``, make its schedules its pipeline's (``stores.schedules``): a spec given
    to gristmill is the one its pipeline's schedules follow from then on."""
    stored = metadata.specs.add_spec(stored_spec(spec, folder))
    if schedules:
        found = spec_schedules(spec, stored.digest, now or datetime.now(UTC))
        metadata.schedules.set_schedules(spec.name, found)
    return stored
