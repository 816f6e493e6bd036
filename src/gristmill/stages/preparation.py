"""The preparation stage: on ``raw.ingested``, compute each feature set that uses the source.

The pipeline spec comes from the run the event belongs to (a run records its spec's
digest; ``stages.specs`` resolves it), or else from the spec the worker was started with,
or else from the one stored spec naming the source; when none applies the event fails. A
feature set from several sources *waits*: it is computed once every source has a batch —
within a run, a batch ingested by that run; outside a run, the source's latest batch.
Within a run it is computed *once*, by the event of the input whose ingestion ended last
(``_maker``): the events of the other inputs leave it to that one, and wait for its handler
if it is running (it may have looked before the others were recorded and found one
missing; then the one that waited makes it).
Validation that says stop announces ``data.anomalous``; otherwise ``features.generated``
announces the set. The set training uses is fitted on the
training subset of its split only (``training.splits``), and its label-based selection
scores for the task training uses (``training.task.preset_task``).
"""

from __future__ import annotations

import logging
import time
from datetime import UTC, datetime
from typing import Any

from gristmill.config.features import FeatureSetSpec
from gristmill.core.events import DATA_ANOMALOUS, FEATURES_GENERATED, RAW_INGESTED, Event
from gristmill.core.ids import digest_json
from gristmill.errors import PERMANENT_ERRORS as PERMANENT
from gristmill.errors import ConfigError
from gristmill.features.prepare import (
    Prepared,
    prepare,
    push_online,
    validate_batch,
)
from gristmill.features.stores import FeatureStores
from gristmill.stages.base import STAGE_FAILED, Announcement, StageOutcome
from gristmill.stages.specs import SpecResolver, run_spec_resolver
from gristmill.stores.features import series_gaps_of
from gristmill.stores.metadata import StageExecution
from gristmill.stores.raw import RawBatch
from gristmill.training.splits import split_for
from gristmill.training.task import preset_task

__all__ = ["PreparationStage", "SpecResolver", "run_spec_resolver"]

logger = logging.getLogger(__name__)

MAKER_POLL = 0.1
"""Seconds between looks at the preparation of a join's last input while it runs."""


class PreparationStage:
    """Computes the feature sets of the spec that read the source of each raw batch."""

    name = "preparation"
    consumes = RAW_INGESTED

    def __init__(self, stores: FeatureStores, specs: SpecResolver) -> None:
        self.stores = stores
        self.specs = specs

    def __repr__(self) -> str:
        return f"PreparationStage({self.stores!r})"

    def idempotency_key(self, event: Event) -> str:
        return digest_json({"event": event.id})

    def handle(self, event: Event) -> StageOutcome:
        spec = self.specs(event)
        source = str(event.payload.get("source", event.key))
        sets = {name: fs for name, fs in (spec.features or {}).items() if source in fs.from_}
        if not sets:
            return StageOutcome(summary=f"{source}: no feature set reads this source")
        batch = self.stores.metadata.batches.get_batch(str(event.payload.get("batch_id")))
        if batch.origin.startswith("stream:"):
            return self._push(sets, batch)
        announcements: list[Announcement] = []
        notes: list[str] = []
        failures: list[tuple[str, Exception]] = []
        for name, feature_set in sets.items():
            inputs = self._inputs(event, feature_set.from_, batch)
            waiting = [s for s in feature_set.from_ if s not in inputs]
            if waiting:
                notes.append(f"{name}: waiting for {', '.join(waiting)}")
                continue
            run = self.stores.metadata.runs.find_run(event.correlation_id)
            run_id = run.run_id if run else None
            if run_id and len(feature_set.from_) > 1:
                other = self._left_to(event, name, feature_set.from_, run_id)
                if other:
                    notes.append(f"{name}: {other}")
                    continue
            try:
                fit_for = split_for(spec, name, self.stores, run_id) if spec else None
                prepared = prepare(
                    name,
                    feature_set,
                    inputs,
                    self.stores,
                    run_id=run_id,
                    split=fit_for,
                    task=preset_task(spec, name),
                )
            except PERMANENT as error:
                failures.append((name, error))
                continue
            known = prepared.feature_set
            if not prepared.created and known is not None and run_id and known.run_id == run_id:
                # another event of this run (the other input of a join) made it: it is
                # announced once, by whoever made it
                notes.append(f"{name}: made by another event of this run")
                continue
            announcements.append(_announcement(prepared))
            notes.append(_note(prepared))
            if prepared.online_warning:
                logger.warning("feature set %s online: %s", name, prepared.online_warning)
        if failures and not announcements:
            first_name, first = failures[0]
            raise type(first)(f"feature set {first_name!r}: {first}") from first
        for failed_name, failure in failures:  # the others went on: each is announced
            announcements.append(_failure(failed_name, failure))
            notes.append(f"{failed_name}: failed")
        return StageOutcome(announcements=announcements, summary="; ".join(notes))

    def _push(self, sets: dict[str, FeatureSetSpec], batch: RawBatch) -> StageOutcome:
        """A streamed micro-batch refits nothing: it is validated like any batch, then its
        rows go through the newest fitted pipeline of each single-source feature set
        straight to the online store (unless validation says stop)."""
        records = self.stores.raw.read(batch.batch_id)
        notes: list[str] = []
        announcements: list[Announcement] = []
        for name, spec in sets.items():
            if len(spec.from_) != 1:
                continue
            report = validate_batch(spec, batch, self.stores)
            if report.status == "failed":
                stopped = Prepared(
                    name, [report], stopped=True, anomalies=list(report.body.get("anomalies", []))
                )
                announcements.append(_announcement(stopped))
                notes.append(f"{name}: stopped by validation")
                continue
            pushed = push_online(name, spec, records, self.stores)
            notes.append(f"{name}: {pushed} vectors pushed online")
        return StageOutcome(
            announcements, summary="; ".join(notes) or "no single-source feature set to push"
        )

    def _inputs(self, event: Event, sources: list[str], batch: RawBatch) -> dict[str, RawBatch]:
        """A batch per source: this one, and the others' from this run (or their latest)."""
        batches = self.stores.metadata.batches
        found = {batch.source: batch}
        in_run = self._ingested_in_run(event.correlation_id)
        for source in sources:
            if source in found:
                continue
            if in_run is not None:
                if source in in_run:
                    found[source] = batches.get_batch(in_run[source])
            else:
                latest = batches.latest_batch(source)
                if latest is not None:
                    found[source] = latest
        return found

    def _left_to(self, event: Event, name: str, sources: list[str], run_id: str) -> str:
        """Why this event leaves run ``run_id``'s join ``name`` to another ('' when it
        makes it): the join is made once, by the event of the input ingested last."""
        maker = self._maker(run_id, sources)
        if maker is None or maker[0] == event.id:
            return ""
        maker_event, maker_source = maker
        ended = self._ended(run_id, maker_event)
        if ended is None:
            return f"made by the event of {maker_source} (the input ingested last)"
        if any(_answers(output, name) for e in ended for output in e.outputs):
            return f"made by the event of {maker_source} (the input ingested last)"
        return ""  # that one looked before every input was recorded: this one makes it

    def _maker(self, run_id: str, sources: list[str]) -> tuple[str, str] | None:
        """``(raw.ingested event id, source)`` of the input of ``sources`` whose ingestion in
        run ``run_id`` ended last (by end time, then execution id)."""
        last: tuple[Any, str, str, str] | None = None
        for execution in self.stores.metadata.executions.list_executions(run_id):
            if execution.status not in ("succeeded", "skipped"):
                continue
            for output in execution.outputs:
                payload: dict[str, Any] = output.get("payload", {})
                source = str(payload.get("source"))
                if output.get("type") != RAW_INGESTED or source not in sources:
                    continue
                order = (execution.finished_at, execution.execution_id, str(output.get("id")))
                if last is None or order > last[:3]:
                    last = (*order, source)
        return None if last is None else (last[2], last[3])

    def _ended(self, run_id: str, event_id: str) -> list[StageExecution] | None:
        """The ended preparations of ``event_id``; ``None`` while it was not taken yet (it
        will find every input: leave the join to it). While it runs under a live lease,
        wait for it."""
        while True:
            mine = [
                e
                for e in self.stores.metadata.executions.list_executions(run_id)
                if e.stage == self.name and e.input_event_id == event_id
            ]
            if not mine:
                return None
            now = datetime.now(UTC)
            if not any(
                e.status == "running" and e.lease_expires_at and e.lease_expires_at > now
                for e in mine
            ):
                return [e for e in mine if e.status != "running"]
            time.sleep(MAKER_POLL)

    def _ingested_in_run(self, run_id: str) -> dict[str, str] | None:
        """Source → batch id of what run ``run_id`` ingested; ``None`` if it is no run."""
        metadata = self.stores.metadata
        if metadata.runs.find_run(run_id) is None:
            return None
        ingested: dict[str, str] = {}
        for execution in metadata.executions.list_executions(run_id):
            if execution.status not in ("succeeded", "skipped"):
                continue
            for output in execution.outputs:
                if output.get("type") == RAW_INGESTED:
                    payload: dict[str, Any] = output.get("payload", {})
                    ingested[str(payload.get("source"))] = str(payload.get("batch_id"))
        return ingested


def _answers(output: dict[str, Any], name: str) -> bool:
    """Whether a recorded output event of a preparation is the outcome of feature set
    ``name`` (computed, stopped by validation, or failed)."""
    payload: dict[str, Any] = output.get("payload", {})
    if output.get("type") == FEATURES_GENERATED:
        return payload.get("name") == name
    return payload.get("feature_set") == name


def _failure(name: str, exc: Exception) -> Announcement:
    return Announcement(
        STAGE_FAILED,
        {
            "stage": PreparationStage.name,
            "feature_set": name,
            "error": f"feature set {name!r}: {exc}",
            "error_type": type(exc).__name__,
        },
        key=name,
    )


def _announcement(prepared: Prepared) -> Announcement:
    reports = [r.report_id for r in prepared.reports]
    if prepared.stopped:
        return Announcement(
            DATA_ANOMALOUS,
            {
                "feature_set": prepared.name,
                "batches": [r.subject for r in prepared.reports],
                "reports": reports,
                "anomalies": prepared.anomalies,
            },
            key=prepared.name,
        )
    fs = prepared.feature_set
    if fs is None:
        raise ConfigError(f"feature set {prepared.name!r} was neither computed nor stopped")
    return Announcement(
        FEATURES_GENERATED,
        {
            "feature_set_id": fs.feature_set_id,
            "name": fs.name,
            "rows": fs.row_count,
            "columns": [c["name"] for c in fs.columns],
            "location": fs.location,
            "inputs": fs.inputs,
            "created": prepared.created,
            "materialized": prepared.materialized,
            "reports": reports,
            "warnings": sum(len(r.body.get("anomalies", [])) for r in prepared.reports),
            **({"online_warning": prepared.online_warning} if prepared.online_warning else {}),
            **({"label": fs.label_outcome} if fs.label_outcome else {}),
            **({"series_gaps": gaps} if (gaps := series_gaps_of(fs)) else {}),
        },
        key=fs.name,
    )


def _note(prepared: Prepared) -> str:
    if prepared.stopped:
        return f"{prepared.name}: stopped by validation ({len(prepared.anomalies)} anomalies)"
    fs = prepared.feature_set
    state = "new" if prepared.created else "already computed"
    return f"{prepared.name}: {fs.row_count if fs else 0} rows ({state})"
