"""Training and evaluation stages: ``features.generated`` → ``model.trained`` → ``model.evaluated``.

Training takes the feature set the spec's ``train.feature_set`` names (by default the first
feature set with a label), takes the split it was fitted for, trains every candidate on the
executor and announces them. Evaluation scores the trained candidates on the test subset,
ranks them, applies the gate and announces the leaderboard.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from gristmill.config.spec import training_target
from gristmill.core.events import FEATURES_GENERATED, MODEL_EVALUATED, MODEL_TRAINED, Event
from gristmill.core.ids import digest_json
from gristmill.errors import DataError
from gristmill.execution.port import Executor
from gristmill.features.stores import FeatureStores
from gristmill.stages.base import Announcement, StageOutcome
from gristmill.stages.specs import SpecResolver
from gristmill.stores.models import Candidate
from gristmill.training.assess import assess
from gristmill.training.train import TrainingResult, train


class TrainingStage:
    name = "training"
    consumes = FEATURES_GENERATED

    def __init__(
        self, stores: FeatureStores, specs: SpecResolver, executor: Callable[[], Executor]
    ) -> None:
        self.stores = stores
        self.specs = specs
        self.executor = executor

    def idempotency_key(self, event: Event) -> str:
        return digest_json({"event": event.id})

    def handle(self, event: Event) -> StageOutcome:
        spec = self.specs(event)
        name = str(event.payload.get("name"))
        if training_target(spec) != name:
            return StageOutcome(summary=f"{name}: not the feature set this pipeline trains on")
        feature_set = self.stores.metadata.feature_sets.get_feature_set(
            str(event.payload.get("feature_set_id"))
        )
        run = self.stores.metadata.runs.find_run(event.correlation_id)
        result = train(
            spec, feature_set, self.stores, self.executor(), run_id=run.run_id if run else None
        )
        if not result.trained:  # recorded as failed; nothing to evaluate, the run did not work
            reasons = "; ".join(f"{c.name}: {c.error}" for c in result.candidates)
            raise DataError(f"every candidate failed to train ({reasons})")
        return StageOutcome(
            [Announcement(MODEL_TRAINED, payload_of(result), key=feature_set.name)],
            summary=f"{len(result.trained)} of {len(result.candidates)} candidates trained",
        )


def payload_of(result: TrainingResult) -> dict[str, object]:
    """The ``model.trained`` payload announcing ``result``."""
    warnings = [w.message for w in result.split.warnings]
    return trained_payload(
        result.feature_set.feature_set_id,
        result.split.split_id,
        result.task,
        warnings,
        result.candidates,
        task_reason=result.task_reason,
        notes=[n.message for n in result.split.notes],
    )


def trained_payload(
    feature_set_id: str,
    split_id: str,
    task: str,
    warnings: list[str],
    candidates: list[Candidate],
    *,
    task_reason: str | None = None,
    notes: list[str] | None = None,
) -> dict[str, object]:
    """The payload of ``model.trained``: what the evaluation stage needs to find the rest,
    why the task is what it is (``task_reason``, when known), the split's warnings and its
    ``notes`` (what is expected of it, such as a trend)."""
    return {
        "feature_set_id": feature_set_id,
        "split_id": split_id,
        "task": task,
        "task_reason": task_reason,
        "warnings": warnings,
        "notes": notes or [],
        "candidates": [
            {"candidate_id": c.candidate_id, "name": c.name, "status": c.status, "error": c.error}
            for c in candidates
        ],
    }


class EvaluationStage:
    name = "evaluation"
    consumes = MODEL_TRAINED

    def __init__(
        self,
        stores: FeatureStores,
        specs: SpecResolver,
        images: Path,
        executor: Callable[[], Executor] | None = None,
    ) -> None:
        self.stores = stores
        self.specs = specs
        self.images = images
        self.executor = executor

    def idempotency_key(self, event: Event) -> str:
        return digest_json({"event": event.id})

    def handle(self, event: Event) -> StageOutcome:
        spec = self.specs(event)
        metadata = self.stores.metadata
        candidates = [
            metadata.candidates.get_candidate(str(c["candidate_id"]))
            for c in event.payload.get("candidates", [])
        ]
        feature_set = metadata.feature_sets.get_feature_set(str(event.payload["feature_set_id"]))
        split = metadata.splits.get_split(str(event.payload["split_id"]))
        result = TrainingResult.restore(
            feature_set, split, str(event.payload["task"]), candidates, self.stores
        )
        run = metadata.runs.find_run(event.correlation_id)
        run_id = run.run_id if run else None
        executor = self.executor() if self.executor else None
        assessment = assess(
            spec, result, self.stores, images=self.images, run_id=run_id, executor=executor
        )
        payload = {
            "feature_set_id": feature_set.feature_set_id,
            "split_id": split.split_id,
            "metric": assessment.metric,
            "leaderboard": [
                {k: s[k] for k in ("candidate", "candidate_id", "value", "rank", "best", "metrics")}
                for s in assessment.standings
            ],
            "best": assessment.best.candidate_id if assessment.best else None,
            "gate": assessment.gate,
            "report": assessment.report_id,
            "images": assessment.images,
        }
        best = assessment.best.name if assessment.best else "none"
        return StageOutcome(
            [Announcement(MODEL_EVALUATED, payload, key=feature_set.name)],
            summary=f"best: {best} ({assessment.metric})",
        )
