"""The scoring stage: ``scores.requested`` → a batch score job → ``scores.ready``.

``ScoringStage`` runs the job an event asks for (``run_score_job``), keyed by its job id:
a redelivered request finishes the job where it stopped, and a job done is not done again.
At the end the job's webhook, when it has one, is POSTed the job's summary (tried
``webhook_attempts`` times; a webhook that stays down is logged, the job still succeeded),
and ``scores.ready`` is announced. A job that fails for good (a ``DataError``,
``ConfigError`` or ``NotFoundError``: retrying cannot heal it) posts its webhook too, and
the worker announces ``stage.failed``.

``ScoreNewBatches`` and ``ScoreNewFeatureSets`` are the spec's ``score: {on: new_batch}``:
they turn a new raw batch of the spec's source (``raw.ingested``) or a new feature set of
its name (``features.generated``) into a ``scores.requested`` for the spec's model, so new
data is scored without a person. They are ``Selective``: an event of a pipeline whose spec
has no ``score: {on: new_batch}`` is acknowledged by the worker with no execution recorded,
so ``gristmill worker --all`` runs them at the cost of a spec lookup per batch.
"""

from __future__ import annotations

import logging
from abc import ABC, abstractmethod
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from gristmill.config.scoring import ScoreSpec
from gristmill.core.events import (
    FEATURES_GENERATED,
    RAW_INGESTED,
    SCORES_READY,
    SCORES_REQUESTED,
    Event,
)
from gristmill.core.ids import digest_json
from gristmill.core.webhooks import notify
from gristmill.errors import PERMANENT_ERRORS, ConfigError, NotFoundError
from gristmill.execution.port import Executor
from gristmill.features.stores import FeatureStores
from gristmill.servables.loading import parse_ref, resolve_version
from gristmill.stages.base import Announcement, StageOutcome
from gristmill.stages.score_jobs import ready_payload, run_score_job
from gristmill.stages.specs import SpecResolver
from gristmill.stores.scores import SCORING_STAGE, ScoreJob, ScoreStore, job_key, job_summary

log = logging.getLogger(__name__)


def requested_job(payload: dict[str, Any], default_id: str) -> ScoreJob:
    """The job a ``scores.requested`` payload (``job_id``, ``model``, ``input``,
    ``webhook``) asks for; ``ConfigError`` naming the field that is wrong."""
    fields = {}
    for name in ("model", "input"):
        value = payload.get(name)
        if not isinstance(value, str) or not value.strip():
            raise ConfigError(f"a score request needs {name!r} (text); it has {value!r}")
        fields[name] = value.strip()
    webhook = payload.get("webhook")
    if webhook is not None and not (
        isinstance(webhook, str) and webhook.startswith(("http://", "https://"))
    ):
        raise ConfigError(f"a score request's webhook must be an http(s) URL, not {webhook!r}")
    job_id = payload.get("job_id") or default_id
    return ScoreJob(
        job_id=str(job_id),
        model=fields["model"],
        input=fields["input"],
        state="queued",
        created_at=datetime.now(UTC),
        webhook=webhook,
    )


class ScoringStage:
    """Runs the score job of each ``scores.requested`` (see the module docstring)."""

    name = SCORING_STAGE
    consumes = SCORES_REQUESTED

    def __init__(
        self,
        stores: FeatureStores,
        scores: ScoreStore,
        executor: Callable[[], Executor],
        *,
        partition_rows: int,
        webhook_attempts: int = 3,
    ) -> None:
        self.stores = stores
        self.scores = scores
        self.executor = executor
        self.partition_rows = partition_rows
        self.webhook_attempts = webhook_attempts

    def idempotency_key(self, event: Event) -> str:
        return job_key(str(event.payload.get("job_id") or event.id))

    def handle(self, event: Event) -> StageOutcome:
        job = self.stores.metadata.score_jobs.add_job(requested_job(event.payload, event.id))
        try:
            done = run_score_job(
                job,
                self.stores,
                self.scores,
                self.executor(),
                partition_rows=self.partition_rows,
            )
        except PERMANENT_ERRORS:  # the job failed for good: its webhook hears it
            failed = self.stores.metadata.score_jobs.find_job(job.job_id)
            if failed is not None and failed.webhook:
                notify(failed.webhook, job_summary(failed), attempts=self.webhook_attempts)
            raise
        if done.webhook:
            notify(done.webhook, job_summary(done), attempts=self.webhook_attempts)
        name, _ = parse_ref(done.model)
        return StageOutcome(
            [Announcement(SCORES_READY, ready_payload(done), key=name)],
            summary=f"{done.rows} row(s) scored, {done.bad_rows} bad, in {done.location}",
        )


class _ScoreNew(ABC):
    """A ``score: {on: new_batch}`` trigger (see the module docstring)."""

    name = ""
    consumes = ""

    def __init__(self, stores: FeatureStores, specs: SpecResolver) -> None:
        self.stores = stores
        self.specs = specs

    def idempotency_key(self, event: Event) -> str:
        return digest_json({"event": event.id})

    def wants(self, event: Event) -> bool:
        """Whether the event's spec scores new data (``score: {on: new_batch}``); a spec
        that cannot be told is wanted, so ``handle`` records why (``ConfigError``)."""
        try:
            score = self.specs(event).score
        except ConfigError:
            return True
        return score is not None and score.on == "new_batch"

    @abstractmethod
    def _input(self, event: Event, score: ScoreSpec) -> str | None:
        """The input to score for ``event``, ``None`` when the spec does not score it."""

    def handle(self, event: Event) -> StageOutcome:
        spec = self.specs(event)
        score = spec.score
        if score is None or score.on != "new_batch":
            return StageOutcome(summary="the spec scores nothing on new data")
        wanted = self._input(event, score)
        if wanted is None:
            return StageOutcome(summary="not the input the spec scores")
        model = spec.scoring_model() or spec.name
        name, which = parse_ref(model)
        try:
            resolve_version(self.stores, name, which)
        except NotFoundError as exc:
            return StageOutcome(summary=f"nothing scored: {exc}")
        payload = {"job_id": f"job-{event.id}", "model": model, "input": wanted}
        return StageOutcome(
            [Announcement(SCORES_REQUESTED, payload, key=name)],
            summary=f"scoring {wanted} with {model}",
        )


class ScoreNewBatches(_ScoreNew):
    name = "scoring-batches"
    consumes = RAW_INGESTED

    def _input(self, event: Event, score: ScoreSpec) -> str | None:
        if score.source is None or event.payload.get("source") != score.source:
            return None
        if event.payload.get("created") is False:  # the same bytes again: scored already
            return None
        return f"batch:{event.payload.get('batch_id')}"


class ScoreNewFeatureSets(_ScoreNew):
    name = "scoring-features"
    consumes = FEATURES_GENERATED

    def _input(self, event: Event, score: ScoreSpec) -> str | None:
        if score.feature_set is None or event.payload.get("name") != score.feature_set:
            return None
        return f"feature_set:{event.payload.get('feature_set_id')}"
