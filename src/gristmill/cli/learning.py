"""What ``split``, ``train`` and ``evaluate`` do (see ``cli.training``, which declares the
verbs and imports this module when one runs: it brings the learning libraries with it)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from gristmill.cli.console import console, err_console, quiet_unless_verbose, styled
from gristmill.cli.ids import resolve_prefixed
from gristmill.cli.settings import settings_from
from gristmill.cli.summary import (
    candidate_seconds,
    candidates_table,
    print_leaderboard,
    print_split,
)
from gristmill.cli.tables import print_table
from gristmill.config.settings import Settings
from gristmill.config.spec import CandidateSpec, PipelineSpec, load_spec, training_target
from gristmill.core.events import MODEL_TRAINED, Event
from gristmill.errors import ConfigError, NotFoundError
from gristmill.runtime.run_records import start_run
from gristmill.runtime.stages import offline_stage
from gristmill.runtime.wiring import Services, open_services
from gristmill.segregation import SplitResult
from gristmill.segregation.result import NOTE_KINDS
from gristmill.stages.spec_checks import preflight
from gristmill.stages.training import payload_of, trained_payload
from gristmill.stores.features import FeatureSet
from gristmill.stores.metadata import Run, RunStatus
from gristmill.stores.models import Candidate
from gristmill.training.splits import fitted_split
from gristmill.training.task import describe_task
from gristmill.training.train import TrainingResult, candidate_id, train


def _spec(path: Path, *, needs_train: bool = True) -> PipelineSpec:
    spec = load_spec(path)
    if needs_train and spec.train is None:
        raise ConfigError(
            f"{path} has no `train:` section, so there is nothing to train on; add one, e.g. "
            "train: {candidates: [{name: logreg, algorithm: logistic_regression}]}"
        )
    return spec


def _candidate_specs(spec: PipelineSpec) -> list[CandidateSpec]:
    return spec.train.candidates if spec.train else []


def _feature_set(
    services: Services, spec: PipelineSpec, path: Path, wanted: str | None
) -> FeatureSet:
    """The feature set given by id (or its unique start), else the newest of the one the
    spec trains on."""
    catalog = services.metadata.feature_sets
    if wanted is not None:
        found: FeatureSet = resolve_prefixed(services.metadata, "fs_", wanted)[1]
        return found
    name = training_target(spec)
    if name is None:
        raise ConfigError(
            f"{path} has no feature set to train on; add one under `features:` "
            "(with a label), or pass --feature-set FS_ID"
        )
    latest = catalog.latest_feature_set(name)
    if latest is None:
        raise NotFoundError(
            f"no feature set {name!r} prepared yet; run `gristmill prepare {path}` "
            f"or `gristmill run {path}` first"
        )
    return latest


@dataclass
class _Record:
    """The run a command records, and the events it announced (for the run's summary)."""

    run: Run
    status: RunStatus = "succeeded"
    error: str | None = None
    events: list[Event] = field(default_factory=list)

    def event(self, type: str, payload: dict[str, Any], key: str) -> Event:
        made = Event(type=type, key=key, payload=payload, correlation_id=self.run.run_id)
        self.events.append(made)
        return made


@contextmanager
def _recorded_run(
    services: Services, spec: PipelineSpec, command: str, path: Path
) -> Iterator[_Record]:
    """A run following the spec (file ``path``), as ``gristmill run`` records one: a worker
    that receives the command's events finds the spec through their ``correlation_id``."""
    run = start_run(services.metadata, spec, command=command, spec_file=path)
    record, started = _Record(run), time.perf_counter()
    try:
        yield record
    except BaseException as exc:
        record.status = "failed"
        record.error = "interrupted (Ctrl-C)" if isinstance(exc, KeyboardInterrupt) else str(exc)
        raise
    finally:
        summary = {
            **run.summary,
            **({"error": record.error} if record.error else {}),
            "outputs": [{"type": e.type, "key": e.key, **e.payload} for e in record.events],
            "seconds": round(time.perf_counter() - started, 3),
        }
        services.metadata.runs.finish_run(run.run_id, record.status, summary)


def show_split(ctx: typer.Context, spec: Path, feature_set: str | None) -> None:
    """``gristmill split``: the split of the feature set, its subsets and warnings."""
    pipeline = _spec(spec, needs_train=feature_set is None)

    async def go() -> tuple[SplitResult, FeatureSet]:
        async with open_services(settings_from(ctx)) as services:
            chosen = _feature_set(services, pipeline, spec, feature_set)
            stores = services.feature_stores()
            with console.status(f"reading the split of {chosen.name}"):
                result = await asyncio.to_thread(fitted_split, pipeline, chosen, stores)
            return result, chosen

    result, chosen = asyncio.run(go())
    print_split(result, chosen)
    if (
        pipeline.split is not None
        and pipeline.split.seed is None
        and "seed" in result.manifest.params
    ):
        seed = result.manifest.params["seed"]
        console.print(
            f"split.seed is not set, so seed {seed} was drawn when {chosen.name} was prepared; "
            f"set split.seed: {seed} in {spec} to get this split again from fresh batches.",
            style="yellow",
            soft_wrap=True,
        )
    console.print(f"next: gristmill train {spec}", style="dim", soft_wrap=True)


def _executor_settings(ctx: typer.Context, executor: str | None) -> Settings:
    settings = settings_from(ctx)
    if executor is None:
        return settings
    chosen = settings.executor.model_copy(update={"backend": executor})
    return settings.model_copy(update={"executor": chosen})


async def _train(
    settings: Settings, spec: PipelineSpec, path: Path, wanted: str | None
) -> tuple[TrainingResult, set[str], str]:
    async with open_services(settings) as services:
        chosen = _feature_set(services, spec, path, wanted)
        total = len(_candidate_specs(spec))
        fresh: set[str] = set()
        progress = Progress(
            TextColumn("{task.description}", markup=False),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=console,
            transient=True,
        )
        with _recorded_run(services, spec, "train", path) as record, progress:
            bar = progress.add_task(f"training on {chosen.name}", total=total)

            def on_candidate(c: Candidate) -> None:  # called from the training thread
                fresh.add(c.candidate_id)
                mark = ("✓", "green") if c.status == "trained" else ("✗", "red")
                tries = f", {c.attempts} attempts" if c.attempts > 1 else ""
                took = candidate_seconds(c)
                progress.console.print(
                    styled(mark, f" {c.name} ({c.algorithm}) {c.status} in {took} s{tries}"),
                    highlight=False,
                )
                progress.advance(bar)

            def work() -> TrainingResult:
                stores, executor = services.feature_stores(), services.executor()
                run_id = record.run.run_id
                return train(
                    spec, chosen, stores, executor, run_id=run_id, on_candidate=on_candidate
                )

            result = await asyncio.to_thread(work)
            if not result.trained:
                record.status = "failed"
            elif len(result.trained) < len(result.candidates):
                record.status = "partial"
            announced = record.event(MODEL_TRAINED, payload_of(result), chosen.name)
            await services.bus.publish([announced])
        return result, fresh, record.run.run_id


def train_and_show(
    ctx: typer.Context, spec: Path, feature_set: str | None, executor: str | None
) -> None:
    """``gristmill train``: the candidates trained, a line on each, then a table."""
    pipeline = _spec(spec)
    preflight(pipeline)
    settings = _executor_settings(ctx, executor)
    with quiet_unless_verbose("gristmill.training"):
        result, fresh, run_id = asyncio.run(_train(settings, pipeline, spec, feature_set))
    print_table(candidates_table(result.candidates, fresh), console)
    sizes = " · ".join(f"{k} {v:,}" for k, v in result.split.manifest.sizes.items())
    console.print(
        f"{len(result.trained)} of {len(result.candidates)} trained ({result.task}) on "
        f"{result.feature_set.feature_set_id}, split {result.split.split_id} ({sizes}); "
        f"run {run_id}",
        highlight=False,
        soft_wrap=True,
    )
    console.print(
        f"task: {describe_task(result.task, result.task_reason)}", highlight=False, soft_wrap=True
    )
    for warning in result.split.warnings:
        console.print(styled(("split warning:", "yellow"), " ", warning.message), highlight=False)
    for note in result.split.notes:
        console.print(f"split note: {note.message}", highlight=False, style="dim")
    if not result.trained:
        err_console.print(styled(("✗ every candidate failed", "red"), "; see the errors above"))
        raise typer.Exit(1)
    console.print(f"next: gristmill evaluate {spec}", style="dim", soft_wrap=True)


def _trained_candidates(
    services: Services, spec: PipelineSpec, feature_set: FeatureSet, path: Path
) -> list[Candidate]:
    """The spec's candidates (as configured now) of the newest split they were trained on."""
    wanted = {c.name: c for c in _candidate_specs(spec)}
    fs_id = feature_set.feature_set_id
    known = services.metadata.candidates.list_candidates(feature_set_id=fs_id, limit=1000)
    mine = [
        c
        for c in known
        if c.name in wanted
        and c.candidate_id == candidate_id(fs_id, c.split_id, wanted[c.name], c.task)
    ]
    if not mine:
        raise NotFoundError(
            f"no candidate of {path} has been trained on feature set {fs_id} "
            f"({feature_set.name}) yet; run `gristmill train {path}` first"
        )
    newest = {c.name: c for c in reversed(mine) if c.split_id == mine[0].split_id}
    chosen = [newest[name] for name in wanted if name in newest]
    if not any(c.status == "trained" for c in chosen):
        raise NotFoundError(
            f"every candidate of {path} failed to train on {fs_id}, so there is nothing to "
            f"evaluate; see `gristmill ls candidates`, fix the spec and train again"
        )
    return chosen


def _trained_event(
    services: Services, feature_set: FeatureSet, candidates: list[Candidate], run_id: str
) -> Event:
    """The ``model.trained`` the training stage would have announced for these candidates."""
    split = services.metadata.splits.get_split(candidates[0].split_id)
    warnings = [str(w.get("message")) for w in split.warnings if w.get("kind") not in NOTE_KINDS]
    notes = [str(w.get("message")) for w in split.warnings if w.get("kind") in NOTE_KINDS]
    payload = trained_payload(
        feature_set.feature_set_id,
        split.split_id,
        candidates[0].task,
        warnings,
        candidates,
        notes=notes,
    )
    return Event(type=MODEL_TRAINED, key=feature_set.name, payload=payload, correlation_id=run_id)


async def _evaluate(
    settings: Settings, spec: PipelineSpec, path: Path, wanted: str | None
) -> tuple[dict[str, Any], list[Candidate]]:
    async with open_services(settings) as services:
        chosen = _feature_set(services, spec, path, wanted)
        candidates = _trained_candidates(services, spec, chosen, path)
        with _recorded_run(services, spec, "evaluate", path) as record:
            trained = _trained_event(services, chosen, candidates, record.run.run_id)
            stage = offline_stage("evaluation", services, lambda _event: spec)
            with console.status(f"evaluating {len(candidates)} candidate(s) of {chosen.name}"):
                outcome = await asyncio.to_thread(stage.handle, trained)
            events = [
                record.event(a.type, a.payload, a.key or chosen.name) for a in outcome.announcements
            ]
            await services.bus.publish(events)
        return events[0].payload, candidates


def evaluate_and_show(ctx: typer.Context, spec: Path, feature_set: str | None) -> None:
    """``gristmill evaluate``: the candidates ranked on the test subset, the gate."""
    pipeline = _spec(spec)
    settings = settings_from(ctx)
    payload, candidates = asyncio.run(_evaluate(settings, pipeline, spec, feature_set))
    console.print(
        f"evaluated {len(payload.get('leaderboard', []))} candidate(s) on the test subset of "
        f"split {payload.get('split_id')}",
        highlight=False,
        soft_wrap=True,
    )
    print_leaderboard(payload)
    for c in candidates:
        if c.status != "trained":
            console.print(
                styled((f"✗ {c.name} is not ranked:", "red"), f" it failed to train ({c.error})"),
                highlight=False,
                soft_wrap=True,
            )
    images = [Path(p) for drawn in payload.get("images", {}).values() for p in drawn.values()]
    if images:
        console.print(
            f"pictures (PNG), a folder per candidate: {images[0].parent.parent}", soft_wrap=True
        )
    console.print(
        f"leaderboard recorded: gristmill show {payload.get('report')}", style="dim", soft_wrap=True
    )
