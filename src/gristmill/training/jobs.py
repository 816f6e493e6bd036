"""Work sent to an executor: module-level functions on plain data, so any backend can run them.

``fit_candidate`` fits one learner and returns its skops bytes and what it learned;
``score_trial`` fits and scores one hyper-parameter trial. Both raise what the learner
raises (``ConfigError`` for bad parameters, ``DataError`` for bad data): the caller decides
what is retried.
"""

from __future__ import annotations

import platform
import time
from importlib import metadata as importlib_metadata
from typing import Any

import pandas as pd

from gristmill.evaluation import evaluate
from gristmill.learners import make_learner
from gristmill.learners.serialization import dumps

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
    """Fit one candidate; returns ``model`` (skops bytes), ``learned``, ``seconds``."""
    started = time.perf_counter()
    fitted = make_learner(algorithm, params, task=task).fit(features, label)
    return {
        "model": dumps(fitted),
        "learned": fitted.learned(),
        "seconds": time.perf_counter() - started,
        "versions": library_versions(),
    }


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
    if task == "clustering":
        predicted = fitted.predict(features)
        result = evaluate(task, [metric], None, predicted, features=features)
    else:
        proba = fitted.predict_proba(features) if task == "classification" else None
        result = evaluate(
            task,
            [metric],
            truth,
            fitted.predict(features),
            proba,
            classes=fitted.classes if task == "classification" else None,
            train_y=train[1] if task == "forecasting" else None,
        )
    return float(result.metrics[metric])
