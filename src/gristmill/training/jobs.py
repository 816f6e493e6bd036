"""Work sent to an executor: module-level functions on plain data, so any backend can run them.

``fit_candidate`` fits one learner and returns its skops bytes and what it learned;
``score_trial`` fits and scores one hyper-parameter trial; ``evaluate_candidate`` scores a
stored model on the test subset and draws its pictures. They raise what the learner raises
(``ConfigError`` for bad parameters, ``DataError`` for bad data): the caller decides what is
retried.
"""

from __future__ import annotations

import platform
import tempfile
import time
from importlib import metadata as importlib_metadata
from typing import Any

import pandas as pd

from gristmill.evaluation import EvaluationResult, evaluate, render_curves
from gristmill.learners import FittedLearner, make_learner
from gristmill.learners.serialization import dumps, loads

LIBRARIES = ("gristmill", "scikit-learn", "numpy", "pandas", "statsmodels", "skops")


def library_versions() -> dict[str, str]:
    """The versions of the libraries a model depends on, and Python's."""
    versions = {"python": platform.python_version()}
    for name in LIBRARIES:
        try:
            versions[name] = importlib_metadata.version(name)
        except importlib_metadata.PackageNotFoundError:
            continue
    return versions


def fit_candidate(
    algorithm: str,
    params: dict[str, Any],
    task: str,
    features: pd.DataFrame,
    label: pd.Series | None,
) -> dict[str, Any]:
    """Fit one candidate; returns ``model`` (skops bytes), ``learned``, ``seconds``, and
    ``started`` (epoch seconds: when the worker began, not when the task was queued)."""
    began, started = time.time(), time.perf_counter()
    fitted = make_learner(algorithm, params, task=task).fit(features, label)
    return {
        "model": dumps(fitted),
        "learned": fitted.learned(),
        "seconds": time.perf_counter() - started,
        "started": began,
        "versions": library_versions(),
    }


def predictions_scored(
    fitted: FittedLearner,
    task: str,
    names: list[str],
    features: pd.DataFrame,
    truth: pd.Series | None,
    train_y: pd.Series | None = None,
) -> EvaluationResult:
    """``fitted``'s predictions for ``features`` measured by the evaluators ``names``.

    A forecaster forecasts ``len(features)`` steps (``features`` as exogenous columns, if
    any) and is measured against ``train_y`` too (MASE); a classifier's probabilities are
    measured where it has them.
    """
    proba = None
    if task == "forecasting":
        predicted = fitted.forecast(len(features), features if len(features.columns) else None)
    else:
        predicted = fitted.predict(features)
        if task == "classification" and "proba" in fitted.capabilities:
            proba = fitted.predict_proba(features)
    return evaluate(
        task,
        names,
        truth,
        predicted,
        proba,
        classes=fitted.classes if task == "classification" else None,
        train_y=train_y if task == "forecasting" else None,
        features=features,
    )


def evaluate_candidate(
    model: bytes,
    task: str,
    names: list[str],
    features: pd.DataFrame,
    truth: pd.Series | None,
    train_y: pd.Series | None,
    also_trust: list[str] | None = None,
) -> dict[str, Any]:
    """Score a stored model (skops bytes) on the test subset and draw its pictures;
    ``also_trust`` names the packages of an estimator named by import path.

    Returns ``metrics``, ``curves`` (as data) and ``pictures`` (PNG bytes by name), so the
    caller keeps them wherever it runs: this may run on another machine.
    """
    fitted = loads(model, also_trust=also_trust or ())
    outcome = predictions_scored(fitted, task, names, features, truth, train_y)
    with tempfile.TemporaryDirectory(prefix="gristmill-pictures-") as folder:
        drawn = render_curves(outcome, folder)
        pictures = {name: path.read_bytes() for name, path in drawn.items()}
    return {"metrics": outcome.metrics, "curves": outcome.curves, "pictures": pictures}


def score_trial(
    algorithm: str,
    params: dict[str, Any],
    task: str,
    metric: str,
    train: tuple[pd.DataFrame, pd.Series | None],
    holdout: tuple[pd.DataFrame, pd.Series | None],
) -> float:
    """Fit on ``train`` and return ``metric`` on ``holdout`` (one hyper-parameter trial)."""
    fitted = make_learner(algorithm, params, task=task).fit(*train)
    features, truth = holdout
    result = predictions_scored(fitted, task, [metric], features, truth, train[1])
    return float(result.metrics[metric])
