"""``assess``: evaluate trained candidates on the test subset, rank them, apply the gate.

Metrics go into each candidate's record; curves are kept as data (in the leaderboard
report) and drawn as PNG files a person opens (also stored as artifacts). The best
candidate by the spec's metric is marked; the gate compares it with the model in production
(minimum absolute / relative improvement) and records its decision.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from gristmill.config.spec import PipelineSpec
from gristmill.core.ids import digest_json
from gristmill.errors import NotFoundError
from gristmill.evaluation import (
    check_evaluators,
    evaluate,
    higher_is_better,
    leaderboard,
    render_curves,
)
from gristmill.features.prepare import FeatureStores
from gristmill.learners import FittedLearner
from gristmill.learners.serialization import loads
from gristmill.stores.models import Candidate
from gristmill.stores.reports import Report
from gristmill.training.frames import training_frames
from gristmill.training.gate import gate
from gristmill.training.train import TrainingResult
from gristmill.training.tuning import DEFAULT_METRIC

LEADERBOARD_KIND = "leaderboard"
# Always drawn, whatever else the spec asks for: the pictures people look at first.
PICTURES = {
    "classification": ["roc_auc", "pr_auc", "confusion_matrix", "calibration"],
    "regression": ["residuals"],
    "forecasting": ["residuals"],
}


@dataclass(frozen=True)
class Assessment:
    metric: str
    standings: list[dict[str, Any]]
    best: Candidate | None
    gate: dict[str, Any]
    report_id: str
    images: dict[str, dict[str, str]] = field(default_factory=dict)


def load_model(stores: FeatureStores, candidate: Candidate) -> tuple[dict[str, Any], FittedLearner]:
    """A candidate's bundle manifest and its fitted learner, both verified by digest."""
    ref = stores.artifacts.find(candidate.artifact or "")
    if ref is None:
        raise NotFoundError(f"candidate {candidate.name!r} has no stored model; train it again")
    manifest: dict[str, Any] = json.loads(stores.artifacts.get(ref))
    learner = stores.artifacts.find(manifest["learner"])
    if learner is None:
        raise NotFoundError(f"the learner of candidate {candidate.name!r} is missing")
    return manifest, loads(stores.artifacts.get(learner))


def _metrics(
    spec: PipelineSpec,
    result: TrainingResult,
    candidate: Candidate,
    stores: FeatureStores,
    names: list[str],
    images: Path,
) -> tuple[dict[str, Any], dict[str, Any], dict[str, str]]:
    _, fitted = load_model(stores, candidate)
    features, truth = training_frames(result.split.test, result.feature_set)
    _, train_y = training_frames(result.split.train, result.feature_set)
    task = result.task
    proba = None
    if task == "forecasting":
        exog = features if len(features.columns) else None
        predicted = fitted.forecast(len(features), exog)
    else:
        predicted = fitted.predict(features)
        if task == "classification" and "proba" in fitted.capabilities:
            proba = fitted.predict_proba(features)
    outcome = evaluate(
        task,
        names,
        truth,
        predicted,
        proba,
        classes=fitted.classes if task == "classification" else None,
        train_y=train_y if task == "forecasting" else None,
        features=features,
    )
    drawn = render_curves(outcome, images / candidate.name)
    pictures = {}
    for name, path in drawn.items():
        stores.artifacts.put(path.read_bytes(), kind="image", media_type="image/png")
        pictures[name] = str(path)
    return outcome.metrics, outcome.curves, pictures


def assess(
    spec: PipelineSpec,
    result: TrainingResult,
    stores: FeatureStores,
    *,
    images: Path,
    run_id: str | None = None,
) -> Assessment:
    """Evaluate, rank, gate; see the module docstring."""
    task = result.task
    metric = spec.evaluate.metric if spec.evaluate else DEFAULT_METRIC.get(task, "smape")
    extra = spec.evaluate.evaluators if spec.evaluate else []
    names = list(dict.fromkeys([metric, *extra, *PICTURES.get(task, [])]))
    check_evaluators(task, names)
    curves: dict[str, Any] = {}
    pictures: dict[str, dict[str, str]] = {}
    evaluated: dict[str, Candidate] = {}
    for candidate in result.trained:
        metrics, curves[candidate.name], pictures[candidate.name] = _metrics(
            spec, result, candidate, stores, names, images
        )
        evaluated[candidate.name] = replace(candidate, metrics=metrics)
        stores.metadata.candidates.save_candidate(evaluated[candidate.name])
    board = leaderboard(
        {name: c.metrics for name, c in evaluated.items()}, metric, higher_is_better(metric)
    )
    best = next((evaluated[s.candidate] for s in board if s.best), None)
    standings = [
        {
            "candidate": s.candidate,
            "candidate_id": evaluated[s.candidate].candidate_id,
            "value": s.value,
            "rank": s.rank,
            "best": s.best,
            "metrics": evaluated[s.candidate].metrics,
        }
        for s in board
    ]
    failed = [
        {"candidate": c.name, "error": c.error} for c in result.candidates if c.status != "trained"
    ]
    decision = gate(spec, result, stores, metric, best, load=load_model)
    report_id = (
        "lb_"
        + digest_json(
            {"split": result.split.split_id, "run": run_id, "candidates": sorted(evaluated)}
        ).removeprefix("sha256:")[:24]
    )
    stores.metadata.reports.add_report(
        Report(
            report_id=report_id,
            kind=LEADERBOARD_KIND,
            subject=result.split.split_id,
            status="passed" if decision["passed"] else "failed",
            created_at=datetime.now(UTC),
            body={
                "metric": metric,
                "task": task,
                "standings": standings,
                "failed": failed,
                "gate": decision,
                "curves": curves,
                "images": pictures,
            },
            run_id=run_id,
        )
    )
    return Assessment(metric, standings, best, decision, report_id, pictures)
