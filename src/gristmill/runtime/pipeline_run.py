"""``gristmill run``: one pipeline run, through the bus and the stores, in one process tree.

The run publishes one ``source.available`` per source (its ``correlation_id`` is the run id),
runs the built stages as in-process workers, and follows the run through the execution
records: an event is settled once an execution for it is terminal, and the events that
execution recorded become pending in turn. The run ends when nothing is pending.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gristmill.config.spec import PipelineSpec
from gristmill.core.events import SOURCE_AVAILABLE, Event
from gristmill.core.ids import new_id
from gristmill.core.outages import OutageLog
from gristmill.runtime.run_records import start_run
from gristmill.runtime.stage_names import SCORING_STAGES
from gristmill.runtime.stages import offline_stage
from gristmill.runtime.wiring import Services
from gristmill.runtime.worker import StageWorker
from gristmill.stages.base import Stage
from gristmill.stages.ingestion import IngestionStage, SourceProgress
from gristmill.stages.preparation import run_spec_resolver
from gristmill.stages.spec_checks import preflight
from gristmill.stores.metadata import Run, StageExecution
from gristmill.stores.run_status import latest_per_event, outcome

TERMINAL = ("succeeded", "failed", "skipped")
OFFLINE_STAGES = ("preparation", "training", "evaluation", "deployment")


@dataclass
class RunReport:
    """What a run did, for the end-of-run summary."""

    run: Run
    events: list[Event] = field(default_factory=list)
    skipped_sections: list[str] = field(default_factory=list)
    sources: list[str] = field(default_factory=list)
    seconds: float = 0.0

    def of_type(self, event_type: str) -> list[Event]:
        return [e for e in self.events if e.type == event_type]


def source_events(
    spec: PipelineSpec, run_id: str, only: Sequence[str] | None = None
) -> list[Event]:
    """One ``source.available`` per source (or per source in ``only``), for ``run_id``."""
    return [
        Event(
            type=SOURCE_AVAILABLE,
            key=name,
            payload={"source": source.model_dump(mode="json")},
            correlation_id=run_id,
        )
        for name, source in spec.sources.items()
        if only is None or name in only
    ]


async def run_pipeline(
    spec: PipelineSpec,
    services: Services,
    *,
    on_event: Callable[[Event], None] | None = None,
    on_progress: SourceProgress | None = None,
    timeout: float | None = None,
    actor: str | None = None,
    only: Sequence[str] | None = None,
    folder: Path | None = None,
    command: str = "run",
    spec_file: Path | None = None,
) -> RunReport:
    """Run ``spec`` to quiescence.

    ``on_event`` sees each event the run produces; ``on_progress(source, rows, bytes)``
    follows the rows read while a source is being ingested (from a worker thread);
    ``folder`` is the folder of the spec's file (see ``start_run``); ``command`` names the
    CLI verb that ran it, for the run's record.
    """
    preflight(spec)
    started = time.perf_counter()
    run_id = new_id()
    roots = source_events(spec, run_id, only)
    run = start_run(
        services.metadata,
        spec,
        actor=actor,
        command=command,
        folder=folder,
        spec_file=spec_file,
        run_id=run_id,
        announced=roots,
        sources=[e.key for e in roots],
    )
    if spec.train is not None:
        services.executor()  # its workers start now, while the data is ingested and prepared
    resolver = run_spec_resolver(services.metadata, spec)
    stages: list[Stage] = [
        IngestionStage(services.raw, services.metadata, progress=on_progress),
        *(offline_stage(name, services, resolver) for name in OFFLINE_STAGES),
    ]
    # New data scored in the run. Only then: a trigger that does not want an event (its
    # spec scores nothing new) records no execution, and the run waits for one per stage.
    if spec.score is not None and spec.score.on == "new_batch":
        stages += [offline_stage(name, services, resolver) for name in SCORING_STAGES]
    consumed: dict[str, set[str]] = {}  # event type -> the stages that consume it
    for stage in stages:
        consumed.setdefault(stage.consumes, set()).add(stage.name)
    await services.bus.publish(roots)
    stop = asyncio.Event()
    outages = OutageLog()  # an outage is logged once for all the stages, not once each
    workers = [
        StageWorker(stage, services.bus, services.metadata.executions, outages=outages)
        for stage in stages
    ]
    concurrency = min(4, max(1, len(roots)))
    tasks = [asyncio.create_task(w.run(stop, poll=0.05, concurrency=concurrency)) for w in workers]
    report = RunReport(run=services.metadata.runs.get_run(run_id))
    try:
        await asyncio.wait_for(
            _follow(services, run_id, {e.id: e.type for e in roots}, consumed, report, on_event),
            timeout,
        )
    finally:
        stop.set()
        await asyncio.gather(*tasks, return_exceptions=True)
    report.skipped_sections = spec.skipped_sections()
    report.sources = [name for name in spec.sources if only is None or name in only]
    report.seconds = time.perf_counter() - started
    summary = {**run.summary, **_summary(report)}
    status = outcome(latest_per_event(services.metadata.executions.list_executions(run_id)))
    report.run = services.metadata.runs.finish_run(run_id, status, summary)
    return report


async def _follow(
    services: Services,
    run_id: str,
    pending: dict[str, str],
    consumed: dict[str, set[str]],
    report: RunReport,
    on_event: Callable[[Event], None] | None,
) -> None:
    """Until nothing is ``pending`` (event id -> type): an event is settled once every stage
    that consumes its type has a terminal execution of it, and their events become pending."""
    while pending:
        await asyncio.sleep(0.02)
        settled = _settled(services.metadata.executions.list_executions(run_id))
        for event_id, event_type in list(pending.items()):
            ended = [settled.get((stage, event_id)) for stage in sorted(consumed[event_type])]
            if any(execution is None for execution in ended):
                continue
            del pending[event_id]
            for execution in ended:
                for item in execution.outputs if execution else []:
                    event = Event.model_validate(item)
                    report.events.append(event)
                    if on_event is not None:
                        on_event(event)
                    if event.type in consumed:
                        pending[event.id] = event.type


def _settled(executions: list[StageExecution]) -> dict[tuple[str, str], StageExecution]:
    """(stage, event) pairs whose last execution is terminal (an earlier attempt that failed
    and was retried, or whose holder died and was taken over, settles nothing)."""
    return {
        (e.stage, e.input_event_id): e
        for e in latest_per_event(executions)
        if e.input_event_id is not None and e.status in TERMINAL
    }


def _summary(report: RunReport) -> dict[str, Any]:
    return {
        "events": {t: len(report.of_type(t)) for t in sorted({e.type for e in report.events})},
        "outputs": [{"type": e.type, "key": e.key, **e.payload} for e in report.events],
        "skipped_sections": report.skipped_sections,
        "seconds": round(report.seconds, 3),
    }
