"""``train``: train every candidate in parallel on a feature set's split, record each one.

The split is the one the feature set's pipeline was fitted for (decided before fitting,
``training.splits``): training never splits again, so no fitted state saw its test rows.

Candidates run on the executor side by side. A failing candidate is retried with back-off,
then recorded as failed without sinking the others. A candidate's id is derived from what
it saw and how it was configured, so a run interrupted midway resumes: candidates already
trained are found and skipped.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any

import pandas as pd

from gristmill.config.spec import CandidateSpec, PipelineSpec
from gristmill.core.ids import digest_json
from gristmill.errors import PERMANENT_ERRORS as PERMANENT
from gristmill.errors import ConfigError, GristmillError
from gristmill.evaluation import check_evaluators
from gristmill.execution.port import Executor, Task
from gristmill.features.stores import FeatureStores
from gristmill.segregation import SplitResult
from gristmill.stores.features import FeatureSet
from gristmill.stores.metadata import LineageEdge
from gristmill.stores.models import Candidate, Split
from gristmill.training.frames import training_frames
from gristmill.training.jobs import fit_candidate
from gristmill.training.splits import fitted_split, restore_split
from gristmill.training.task import TaskChoice, check_fits, check_selection, choose_task
from gristmill.training.tuning import tune

logger = logging.getLogger(__name__)

MODEL_KIND = "model"


@dataclass(frozen=True)
class TrainingResult:
    """What training did; ``task_reason`` says why ``task`` (``set by train.task`` or
    ``inferred: …``; ``None`` when restored from the records)."""

    feature_set: FeatureSet
    split: SplitResult
    task: str
    candidates: list[Candidate]
    task_reason: str | None = None

    @property
    def trained(self) -> list[Candidate]:
        return [c for c in self.candidates if c.status == "trained"]

    @classmethod
    def restore(
        cls,
        feature_set: FeatureSet,
        manifest: Split,
        task: str,
        candidates: list[Candidate],
        stores: FeatureStores,
    ) -> TrainingResult:
        """Rebuild a result from the records (another process may have trained): the
        subsets come from the split's stored membership (verified by digest), by row key."""
        return cls(feature_set, restore_split(feature_set, manifest, stores), task, candidates)


def candidate_id(feature_set_id: str, split_id: str, spec: CandidateSpec, task: str) -> str:
    body = {"fs": feature_set_id, "split": split_id, "task": task, **spec.model_dump(mode="json")}
    return "mc_" + digest_json(body).removeprefix("sha256:")[:24]


def train(
    spec: PipelineSpec,
    feature_set: FeatureSet,
    stores: FeatureStores,
    executor: Executor,
    *,
    run_id: str | None = None,
    on_candidate: Callable[[Candidate], None] | None = None,
) -> TrainingResult:
    """Train the spec's candidates on ``feature_set``; see the module docstring."""
    if spec.train is None:
        raise ConfigError("the spec has no `train:` section; add candidates to train")
    table = stores.offline.read(feature_set.feature_set_id)
    algorithms = [c.algorithm for c in spec.train.candidates]
    choice = choose_task(spec.train.task, table, feature_set.label, algorithms)
    task = choice.task
    check_selection(choice, feature_set.selection, feature_set.feature_set_id)
    check_metrics(spec, choice)
    result = fitted_split(spec, feature_set, stores)  # the rows its pipeline was fitted for
    features, label = training_frames(result.train, feature_set)
    pending: dict[str, tuple[CandidateSpec, Candidate]] = {}
    done: list[Candidate] = []
    for candidate_spec in spec.train.candidates:
        cid = candidate_id(feature_set.feature_set_id, result.split_id, candidate_spec, task)
        known = stores.metadata.candidates.find_candidate(cid)
        if known is not None and known.status == "trained":
            logger.info("candidate %s already trained; skipped", candidate_spec.name)
            done.append(known)
            continue
        started = Candidate(
            candidate_id=cid,
            name=candidate_spec.name,
            algorithm=candidate_spec.algorithm,
            task=task,
            params=dict(candidate_spec.params),
            feature_set_id=feature_set.feature_set_id,
            split_id=result.split_id,
            status="failed",
            started_at=datetime.now(UTC),
            run_id=run_id,
        )
        pending[cid] = (candidate_spec, started)
    metric = spec.evaluate.metric if spec.evaluate else None

    def record(candidate: Candidate) -> None:
        stores.metadata.candidates.save_candidate(candidate)
        if on_candidate is not None:
            on_candidate(candidate)
        done.append(candidate)

    ready: dict[str, Candidate] = {}
    for cid, (candidate_spec, started) in pending.items():
        try:
            check_fits(candidate_spec.algorithm, choice)
            ready[cid] = _tuned(candidate_spec, started, metric, result, feature_set, executor)
        except Exception as exc:  # a failed search fails its candidate, not the others
            record(_failed(started, 1, exc))
    _train_all(ready, executor, features, label, spec.train.retries, stores, record)
    order = {c.name: i for i, c in enumerate(spec.train.candidates)}
    done.sort(key=lambda c: order.get(c.name, 0))
    return TrainingResult(feature_set, result, task, done, choice.reason)


def check_metrics(spec: PipelineSpec, choice: TaskChoice) -> None:
    """``ConfigError`` before any training when the spec's metric or evaluators are unknown
    or do not fit the task (``roc_auc`` for a regression); it says how the task was chosen."""
    if spec.evaluate is not None:
        try:
            check_evaluators(choice.task, [spec.evaluate.metric, *spec.evaluate.evaluators])
        except ConfigError as exc:
            raise ConfigError(f"evaluate: {exc}; the task is {choice.describe()}") from exc


def _tuned(
    candidate_spec: CandidateSpec,
    started: Candidate,
    metric: str | None,
    result: SplitResult,
    feature_set: FeatureSet,
    executor: Executor,
) -> Candidate:
    if candidate_spec.tune is None:
        return started
    tuning = tune(candidate_spec, started.task, metric, result, feature_set, executor)
    params = {**candidate_spec.params, **tuning["best_params"]}
    return replace(started, params=params, tuning=tuning)


def _train_all(
    ready: dict[str, Candidate],
    executor: Executor,
    features: pd.DataFrame,
    label: pd.Series | None,
    retries: int,
    stores: FeatureStores,
    record: Callable[[Candidate], None],
) -> None:
    """Fit every candidate side by side; each is recorded the moment it is done (so an
    interrupted run keeps what finished), a crash is retried with back-off."""
    attempts = dict.fromkeys(ready, 1)
    running = {cid: _submit(executor, c, features, label) for cid, c in ready.items()}
    retry_at: dict[str, float] = {}
    while running or retry_at:
        for cid, at in list(retry_at.items()):
            if at <= time.monotonic():
                del retry_at[cid]
                running[cid] = _submit(executor, ready[cid], features, label)
        finished = [cid for cid, task in running.items() if task.done()]
        for cid in finished:
            candidate, attempt = ready[cid], attempts[cid]
            try:
                outcome = running.pop(cid).result()
            except PERMANENT as exc:
                record(_failed(candidate, attempt, exc))
                continue
            except Exception as exc:  # a crash or a flaky dependency: retry with back-off
                if attempt > retries:
                    record(_failed(candidate, attempt, exc))
                    continue
                logger.warning("candidate %s failed (attempt %d): %r", candidate.name, attempt, exc)
                attempts[cid] = attempt + 1
                retry_at[cid] = time.monotonic() + min(10.0, 0.5 * 2 ** (attempt - 1))
                continue
            record(_trained(candidate, outcome, attempt, list(features.columns), stores))
        if not finished:
            time.sleep(0.05)


def _submit(
    executor: Executor, c: Candidate, features: pd.DataFrame, label: pd.Series | None
) -> Task[dict[str, Any]]:
    return executor.submit(fit_candidate, c.algorithm, c.params, c.task, features, label)


def _trained(
    candidate: Candidate,
    outcome: dict[str, Any],
    attempt: int,
    columns: list[str],
    stores: FeatureStores,
) -> Candidate:
    manifest = {
        "format": "gristmill.model/1",
        "learner": stores.artifacts.put(outcome["model"], kind=MODEL_KIND).digest,
        "feature_pipeline": _feature_pipeline(stores, candidate.feature_set_id),
        "features": columns,
        "task": candidate.task,
        "algorithm": candidate.algorithm,
    }
    bundle = stores.artifacts.put(
        json.dumps(manifest, sort_keys=True).encode(),
        kind=MODEL_KIND,
        media_type="application/json",
    )
    stores.metadata.lineage.add_edges(
        [LineageEdge(candidate.split_id, "split", candidate.candidate_id, "candidate", "trained")]
    )
    return replace(
        candidate,
        status="trained",
        started_at=datetime.fromtimestamp(outcome["started"], UTC),
        finished_at=datetime.now(UTC),
        artifact=bundle.digest,
        learned=outcome["learned"],
        versions=outcome["versions"],
        attempts=attempt,
    )


def _feature_pipeline(stores: FeatureStores, feature_set_id: str) -> str | None:
    return stores.metadata.feature_sets.get_feature_set(feature_set_id).pipeline_artifact


def _failed(candidate: Candidate, attempts: int, exc: Exception) -> Candidate:
    kind = "" if isinstance(exc, GristmillError) else f"{type(exc).__name__}: "
    logger.warning("candidate %s failed for good: %s%s", candidate.name, kind, exc)
    return replace(
        candidate,
        status="failed",
        finished_at=datetime.now(UTC),
        attempts=attempts,
        error=f"{kind}{exc}",
    )
