"""Hyper-parameter search with Optuna, its trials running on the executor.

Trials are asked for in waves as wide as the executor, run side by side, and told back.
Each trial fits on the training subset and is scored on the validation subset (or, without
one, on a seeded fifth of the training rows). A trial that fails is told as failed; the
search goes on.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

import numpy as np
import optuna

from gristmill.config.spec import CandidateSpec, TuneSpec
from gristmill.errors import ConfigError
from gristmill.evaluation import higher_is_better
from gristmill.execution.port import Executor
from gristmill.learners import make_learner
from gristmill.stores.features import FeatureSet
from gristmill.training.frames import training_frames
from gristmill.training.jobs import score_trial

if TYPE_CHECKING:
    from gristmill.segregation import SplitResult

logger = logging.getLogger(__name__)

DEFAULT_METRIC = {"classification": "f1", "regression": "rmse", "clustering": "silhouette"}


def suggest(trial: optuna.trial.BaseTrial, space: dict[str, list[Any]]) -> dict[str, Any]:
    """Parameters for ``trial`` from the spec's search space."""
    params: dict[str, Any] = {}
    for name, bounds in space.items():
        numeric = all(isinstance(b, int | float) and not isinstance(b, bool) for b in bounds[:2])
        if len(bounds) in (2, 3) and numeric and (len(bounds) == 2 or bounds[2] == "log"):
            low, high = bounds[0], bounds[1]
            log = len(bounds) == 3
            if isinstance(low, int) and isinstance(high, int):
                params[name] = trial.suggest_int(name, low, high, log=log)
            else:
                params[name] = trial.suggest_float(name, float(low), float(high), log=log)
        elif bounds:
            params[name] = trial.suggest_categorical(name, bounds)
        else:
            raise ConfigError(f"tune.space.{name} is empty; give [low, high] or choices")
    return params


def tune(
    spec: CandidateSpec,
    task: str,
    metric: str | None,
    result: SplitResult,
    feature_set: FeatureSet,
    executor: Executor,
) -> dict[str, Any]:
    """Search ``spec.tune.space``; returns ``best_params``, ``best_value``, ``trials``."""
    settings: TuneSpec | None = spec.tune
    if settings is None:
        return {}
    if task == "forecasting":
        raise ConfigError(f"candidate {spec.name!r}: tuning forecasting models is not built yet")
    metric = metric or DEFAULT_METRIC[task]
    _check_space(spec, task, settings)
    train, holdout = _subsets(result, feature_set)
    sampler = optuna.samplers.TPESampler(seed=settings.seed)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(
        direction="maximize" if higher_is_better(metric) else "minimize", sampler=sampler
    )
    wave = max(1, executor.capabilities.workers)
    remaining = settings.trials
    errors: list[str] = []
    while remaining > 0:
        trials = [study.ask() for _ in range(min(wave, remaining))]
        tasks = [
            executor.submit(
                score_trial,
                spec.algorithm,
                {**spec.params, **suggest(t, settings.space)},
                task,
                metric,
                train,
                holdout,
            )
            for t in trials
        ]
        for trial, pending in zip(trials, tasks, strict=True):
            try:
                study.tell(trial, pending.result())
            except Exception as exc:  # one bad trial (e.g. an invalid combination) is data
                logger.info("trial %d of %s failed: %s", trial.number, spec.name, exc)
                errors.append(str(exc))
                study.tell(trial, state=optuna.trial.TrialState.FAIL)
        remaining -= len(trials)
    completed = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
    if not completed:
        first = f"; the first said: {errors[0]}" if errors else ""
        raise ConfigError(
            f"candidate {spec.name!r}: every one of {settings.trials} tuning trials failed"
            f"{first}; check tune.space"
        )
    return {
        "metric": metric,
        "best_params": study.best_params,
        "best_value": study.best_value,
        "trials": [{"params": t.params, "value": t.value} for t in completed],
    }


def _check_space(spec: CandidateSpec, task: str, settings: TuneSpec) -> None:
    """``ConfigError`` naming the candidate and parameter when the search space names a
    parameter the algorithm does not have (checked with each range's first value)."""
    sample = {name: bounds[0] for name, bounds in settings.space.items() if bounds}
    try:
        make_learner(spec.algorithm, {**spec.params, **sample}, task=task)
    except ConfigError as exc:
        raise ConfigError(f"candidate {spec.name!r}, tune.space: {exc}") from exc


def _subsets(result: SplitResult, feature_set: FeatureSet) -> tuple[Any, Any]:
    if result.validation is not None and result.validation.num_rows > 0:
        return (
            training_frames(result.train, feature_set),
            training_frames(result.validation, feature_set),
        )
    table = result.train
    cut = max(1, table.num_rows // 5)
    shuffled = table.take(np.random.default_rng(0).permutation(table.num_rows))
    return (
        training_frames(shuffled.slice(cut), feature_set),
        training_frames(shuffled.slice(0, cut), feature_set),
    )
