"""The stages this build of gristmill runs, as workers wired to opened services (their
names are ``runtime.stage_names``)."""

from __future__ import annotations

import asyncio
from typing import Protocol

from gristmill.config.spec import PipelineSpec
from gristmill.core.outages import OutageLog
from gristmill.errors import ConfigError
from gristmill.runtime.code_reload import CodeReload
from gristmill.runtime.scheduler import Scheduler
from gristmill.runtime.stage_names import (
    MONITORING_STAGE,
    QUALITY_STAGES,
    SCHEDULER_STAGE,
    SCORING_STAGES,
    STAGE_NAMES,
    STREAM_STAGE,
)
from gristmill.runtime.stream import StreamIngestionWorker
from gristmill.runtime.wiring import Services, build_score_store
from gristmill.runtime.worker import StageWorker
from gristmill.stages.base import Stage
from gristmill.stages.deployment import DeploymentStage
from gristmill.stages.feedback import FeedbackStage
from gristmill.stages.ingestion import IngestionStage
from gristmill.stages.live_quality import LiveQualityStage
from gristmill.stages.monitoring import MonitoringStage
from gristmill.stages.preparation import PreparationStage, SpecResolver, run_spec_resolver
from gristmill.stages.quality_windows import Setups
from gristmill.stages.scoring import ScoreNewBatches, ScoreNewFeatureSets, ScoringStage
from gristmill.stages.training import EvaluationStage, TrainingStage
from gristmill.stores.metadata import MetadataStore

# The stages a run's work goes through (``gristmill run`` runs these; ``gristmill worker
# --all`` too): the event types they consume are ``run_views.RUN_CONSUMES``.
RUN_STAGES = (
    IngestionStage,
    PreparationStage,
    TrainingStage,
    EvaluationStage,
    DeploymentStage,
    ScoringStage,
)


class Worker(Protocol):
    """What ``gristmill worker`` runs: a consumer of one event type."""

    consumer: str
    consumes: str
    handled: int

    async def run(
        self, stop: asyncio.Event, *, poll: float = ..., concurrency: int = ...
    ) -> None: ...


def offline_stage(name: str, services: Services, resolver: SpecResolver) -> Stage:
    """One of the offline learning stages, wired to ``services``."""
    stores = services.feature_stores()
    if name == "preparation":
        return PreparationStage(stores, resolver)
    if name == "training":
        return TrainingStage(stores, resolver, services.executor)
    if name in SCORING_STAGES:
        return scoring_stage(name, services, resolver)
    if name == "deployment":
        return DeploymentStage(stores, resolver)
    return EvaluationStage(stores, resolver, services.settings.home / "reports", services.executor)


def scoring_stage(name: str, services: Services, resolver: SpecResolver) -> Stage:
    """The batch scoring stage, or one of the spec's ``score: {on: new_batch}`` triggers."""
    stores = services.feature_stores()
    if name == "scoring-batches":
        return ScoreNewBatches(stores, resolver)
    if name == "scoring-features":
        return ScoreNewFeatureSets(stores, resolver)
    scoring = services.settings.scoring
    return ScoringStage(
        stores,
        build_score_store(services.settings),
        services.executor,
        partition_rows=scoring.partition_rows,
        webhook_attempts=scoring.webhook_attempts,
    )


def quality_stage(name: str, metadata: MetadataStore, spec: PipelineSpec | None) -> Stage:
    """The feedback stage or the live quality stage; ``spec`` gives the quality window of
    versions whose run's spec cannot be read."""
    setups = Setups(metadata, spec)
    if name == "feedback":
        return FeedbackStage(metadata, setups)
    return LiveQualityStage(metadata, setups)


def build_workers(
    services: Services,
    names: tuple[str, ...] = STAGE_NAMES,
    *,
    spec: PipelineSpec | None = None,
) -> list[Worker]:
    """Workers for the named stages; an unknown name raises ``ConfigError``.

    ``spec`` is the pipeline spec preparation uses for events that belong to no run.
    """
    unknown = [n for n in names if n not in STAGE_NAMES]
    if unknown:
        raise ConfigError(
            f"no stage named {unknown[0]!r}; stages built so far: {', '.join(STAGE_NAMES)}"
        )
    workers: list[Worker] = []
    outages = OutageLog()  # one for the process: an outage is logged once, not per stage
    code = CodeReload(services.restart_executor_workers)  # custom code read again once changed
    for name in names:
        if name == STREAM_STAGE:
            workers.append(
                StreamIngestionWorker(
                    services.bus,
                    services.raw,
                    services.metadata,
                    max_seconds=min(2.0, services.bus.ack_wait / 3),
                    outages=outages,
                )
            )
            continue
        if name == SCHEDULER_STAGE:
            workers.append(Scheduler(services.bus, services.feature_stores(), outages=outages))
            continue
        stage: Stage
        if name == "ingestion":
            stage = IngestionStage(services.raw, services.metadata)
        elif name in QUALITY_STAGES:
            stage = quality_stage(name, services.metadata, spec)
        elif name == MONITORING_STAGE:
            stage = MonitoringStage(services.feature_stores(), spec)
        else:
            stage = offline_stage(name, services, run_spec_resolver(services.metadata, spec))
        executions = services.metadata.executions
        workers.append(StageWorker(stage, services.bus, executions, outages=outages, code=code))
    return workers
