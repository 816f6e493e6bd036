"""``assess``: evaluate trained candidates on the test subset, rank them, apply the gate.

Metrics go into each candidate's record; curves are kept as data (in the leaderboard
report) and drawn as PNG files a person opens (also stored as artifacts). Candidates are
scored side by side on the executor, each task loading its model from bytes. The best
candidate by the spec's metric is marked; the gate compares it with the model in production
(minimum absolute / relative improvement) and records its decision.

Assessing is idempotent: the leaderboard's id is derived from its inputs (feature set,
split, task, every candidate with its model artifact, the metric and evaluators, the gate's
margins and the champion it is held against), never from the time or the run. An
assessment whose leaderboard is recorded already is *found*, not recomputed (its pictures
are restored from the artifact store if their files went missing), and every write on the
way (pictures by digest, candidate metrics by upsert, the report by id) may be repeated, so
a retry after a crash anywhere converges on the same leaderboard.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd

from gristmill.config.spec import PipelineSpec
from gristmill.core.ids import digest_json
from gristmill.errors import ConflictError, DataError, EvaluatorError, GristmillError, NotFoundError
from gristmill.evaluation import check_evaluators, higher_is_better, leaderboard
from gristmill.execution.inline import InlineExecutor
from gristmill.execution.port import Executor, Task
from gristmill.features.stores import FeatureStores
from gristmill.stores.models import CHAMPION, Candidate
from gristmill.stores.reports import LEADERBOARD_KIND, Report
from gristmill.training.bundle import model_bytes, own_packages
from gristmill.training.frames import training_frames
from gristmill.training.gate import gate, model_name
from gristmill.training.jobs import evaluate_candidate
from gristmill.training.train import TrainingResult
from gristmill.training.tuning import DEFAULT_METRIC

logger = logging.getLogger(__name__)

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


def _keep_pictures(
    stores: FeatureStores, drawn: dict[str, bytes], folder: Path
) -> tuple[dict[str, str], dict[str, str]]:
    """Write the PNGs a person opens into ``folder`` and keep them as artifacts too:
    (picture name to file, picture name to artifact digest)."""
    if drawn:
        folder.mkdir(parents=True, exist_ok=True)
    files, digests = {}, {}
    for name, png in drawn.items():
        path = folder / f"{name}.png"
        _write_atomically(path, png)
        digests[name] = stores.artifacts.put(png, kind="image", media_type="image/png").digest
        files[name] = str(path)
    return files, digests


def _write_atomically(path: Path, data: bytes) -> None:
    """A crash mid-write never leaves a truncated picture for a later run to find."""
    partial = path.with_name(f".{path.name}.partial")
    partial.write_bytes(data)
    partial.replace(path)


def leaderboard_id(
    spec: PipelineSpec, result: TrainingResult, stores: FeatureStores, names: list[str]
) -> str:
    """The id of the leaderboard these inputs make (see the module docstring)."""
    deploy = spec.deploy
    model = model_name(spec)
    champion = stores.metadata.registry.find_alias(model, CHAMPION)
    inputs = {
        "feature_set": result.feature_set.feature_set_id,
        "split": result.split.split_id,
        "task": result.task,
        "candidates": sorted(
            (c.candidate_id, c.status, c.artifact or "") for c in result.candidates
        ),
        "evaluators": names,
        "gate": {
            "model": model,
            "min_improvement": deploy.min_improvement if deploy else 0.0,
            "min_relative_improvement": deploy.min_relative_improvement if deploy else 0.0,
            "champion": [champion.version, champion.candidate_id] if champion else None,
        },
    }
    return "lb_" + digest_json(inputs).removeprefix("sha256:")[:24]


def _outcomes(
    spec: PipelineSpec, tasks: dict[str, Task[dict[str, Any]]], trained: list[Candidate]
) -> tuple[dict[str, dict[str, Any]], list[dict[str, Any]]]:
    """Each candidate's evaluation, and those that could not be scored (with why).

    A model that cannot be scored does not hide the others; a custom evaluator of the spec
    that raises fails the evaluation (``DataError`` naming it): no leaderboard would be
    true, and none is recorded, so a fixed function is run again."""
    outcomes: dict[str, dict[str, Any]] = {}
    unscored: list[dict[str, Any]] = []
    failing: dict[str, tuple[EvaluatorError, list[str]]] = {}
    for candidate in trained:
        try:
            outcomes[candidate.name] = tasks[candidate.name].result()
        except EvaluatorError as exc:
            failing.setdefault(exc.path, (exc, []))[1].append(candidate.name)
        except Exception as exc:
            kind = "" if isinstance(exc, GristmillError) else f"{type(exc).__name__}: "
            error = f"evaluation: {kind}{exc}"
            unscored.append({"candidate": candidate.name, "error": error, "stage": "evaluation"})
    if failing:
        raise DataError(
            "; ".join(
                f"custom evaluator {_spec_key(spec, path)} ({path}) raised {exc.error} "
                f"(scoring {', '.join(names)})"
                for path, (exc, names) in failing.items()
            )
            + "; fix the function, or drop it from the spec's evaluate: section, and run again"
        )
    return outcomes, unscored


def _spec_key(spec: PipelineSpec, path: str) -> str:
    """Where the spec names the evaluator ``path``: ``evaluate.metric`` or
    ``evaluate.evaluators[i]``."""
    if spec.evaluate is not None:
        if path in spec.evaluate.evaluators:
            return f"evaluate.evaluators[{spec.evaluate.evaluators.index(path)}]"
        if spec.evaluate.metric == path:
            return "evaluate.metric"
    return "evaluate"


def _recorded(stores: FeatureStores, report_id: str) -> Assessment | None:
    """The assessment a recorded leaderboard holds, its pictures back on disk; else None."""
    try:
        report = stores.metadata.reports.get_report(report_id)
    except NotFoundError:
        return None
    body = report.body
    for candidate, files in body.get("images", {}).items():
        digests = body.get("picture_artifacts", {}).get(candidate, {})
        for name, file in files.items():
            ref = stores.artifacts.find(digests.get(name, ""))
            if not Path(file).exists() and ref is not None:
                Path(file).parent.mkdir(parents=True, exist_ok=True)
                _write_atomically(Path(file), stores.artifacts.get(ref))
    best_id = next((s["candidate_id"] for s in body["standings"] if s["best"]), None)
    best = stores.metadata.candidates.get_candidate(best_id) if best_id else None
    return Assessment(
        body["metric"], body["standings"], best, body["gate"], report_id, body["images"]
    )


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
    on ``executor`` (default: inline, one after another); their pictures go under
    ``images/<leaderboard id>/<candidate>/``."""
    task = result.task
    metric = spec.evaluate.metric if spec.evaluate else DEFAULT_METRIC.get(task, "smape")
    extra = spec.evaluate.evaluators if spec.evaluate else []
    names = list(dict.fromkeys([metric, *extra, *PICTURES.get(task, [])]))
    check_evaluators(task, names)
    report_id = leaderboard_id(spec, result, stores, names)
    found = _recorded(stores, report_id)
    if found is not None:
        logger.info("leaderboard %s is recorded already; not evaluated again", report_id)
        return found
    images = images / report_id
    curves: dict[str, Any] = {}
    pictures: dict[str, dict[str, str]] = {}
    picture_artifacts: dict[str, dict[str, str]] = {}
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
    outcomes, unscored = _outcomes(spec, tasks, result.trained)
    for candidate in result.trained:
        if candidate.name not in outcomes:
            continue
        outcome = outcomes[candidate.name]
        curves[candidate.name] = outcome["curves"]
        pictures[candidate.name], picture_artifacts[candidate.name] = _keep_pictures(
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
        {"candidate": c.name, "error": c.error, "stage": "training"}
        for c in result.candidates
        if c.status != "trained"
    ] + unscored
    decision = gate(spec, result, stores, metric, best)
    report = Report(
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
            "picture_artifacts": picture_artifacts,
        },
        run_id=run_id,
    )
    try:
        stores.metadata.reports.add_report(report)
    except ConflictError:
        # another delivery recorded this leaderboard first, with other figures (float
        # noise); its inputs are ours, so the recorded one is the answer
        logger.warning("leaderboard %s was recorded meanwhile; keeping that one", report_id)
        recorded = _recorded(stores, report_id)
        if recorded is not None:
            return recorded
        raise
    return Assessment(metric, standings, best, decision, report_id, pictures)
