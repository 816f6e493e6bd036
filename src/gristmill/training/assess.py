"""``assess``: evaluate trained candidates on the test subset, rank them, apply the gate.

Metrics go into each candidate's record; curves are kept as data (in the leaderboard
report) and drawn as PNG files a person opens (also stored as artifacts). Candidates are
scored side by side on the executor, each task loading its model from bytes. The best
candidate by the spec's metric is marked; the gate compares it with the model in production
(minimum absolute / relative improvement) and records its decision.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd

from gristmill.config.spec import PipelineSpec
from gristmill.core.ids import digest_json
from gristmill.errors import GristmillError
from gristmill.evaluation import check_evaluators, higher_is_better, leaderboard
from gristmill.execution.inline import InlineExecutor
from gristmill.execution.port import Executor, Task
from gristmill.features.prepare import FeatureStores
from gristmill.stores.models import Candidate
from gristmill.stores.reports import Report
from gristmill.training.bundle import model_bytes, own_packages
from gristmill.training.frames import training_frames
from gristmill.training.gate import gate
from gristmill.training.jobs import evaluate_candidate
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


def _submit_evaluation(
    executor: Executor,
    candidate: Candidate,
    stores: FeatureStores,
    task: str,
    names: list[str],
    test: tuple[pd.DataFrame, pd.Series | None],
    train_y: pd.Series | None,
) -> Task[dict[str, Any]]:
    _, model = model_bytes(stores, candidate)
    features, truth = test
    trust = own_packages(candidate)
    return executor.submit(evaluate_candidate, model, task, names, features, truth, train_y, trust)


def _keep_pictures(stores: FeatureStores, drawn: dict[str, bytes], folder: Path) -> dict[str, str]:
    """Write the PNGs a person opens into ``folder`` and keep them as artifacts too."""
    if drawn:
        folder.mkdir(parents=True, exist_ok=True)
    files = {}
    for name, png in drawn.items():
        path = folder / f"{name}.png"
        path.write_bytes(png)
        stores.artifacts.put(png, kind="image", media_type="image/png")
        files[name] = str(path)
    return files


def assess(
    spec: PipelineSpec,
    result: TrainingResult,
    stores: FeatureStores,
    *,
    images: Path,
    run_id: str | None = None,
    executor: Executor | None = None,
) -> Assessment:
    """Evaluate, rank, gate; see the module docstring. Candidates are scored side by side
    on ``executor`` (default: inline, one after another)."""
    task = result.task
    metric = spec.evaluate.metric if spec.evaluate else DEFAULT_METRIC.get(task, "smape")
    extra = spec.evaluate.evaluators if spec.evaluate else []
    names = list(dict.fromkeys([metric, *extra, *PICTURES.get(task, [])]))
    check_evaluators(task, names)
    curves: dict[str, Any] = {}
    pictures: dict[str, dict[str, str]] = {}
    evaluated: dict[str, Candidate] = {}
    if executor is None:
        executor = InlineExecutor()
        executor.open()
    test = training_frames(result.split.test, result.feature_set)  # once, for every candidate
    train_y = None
    if task == "forecasting":
        _, train_y = training_frames(result.split.train, result.feature_set)
    tasks = {
        c.name: _submit_evaluation(executor, c, stores, task, names, test, train_y)
        for c in result.trained
    }
    unscored: list[dict[str, Any]] = []
    for candidate in result.trained:
        try:
            outcome = tasks[candidate.name].result()
        except Exception as exc:  # one model that cannot be scored must not hide the others
            kind = "" if isinstance(exc, GristmillError) else f"{type(exc).__name__}: "
            unscored.append({"candidate": candidate.name, "error": f"evaluation: {kind}{exc}"})
            continue
        curves[candidate.name] = outcome["curves"]
        pictures[candidate.name] = _keep_pictures(
            stores, outcome["pictures"], images / candidate.name
        )
        evaluated[candidate.name] = replace(candidate, metrics=outcome["metrics"])
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
    ] + unscored
    decision = gate(spec, result, stores, metric, best)
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
