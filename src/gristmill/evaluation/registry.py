"""The evaluator registry: metrics chosen by name for a task, and ``evaluate`` that runs them.

Built-in evaluators are known by name (``accuracy``, ``rmse``, ``silhouette`` …), each for
the tasks it fits. Any other evaluator is named by the import path of a function
``(y_true, y_pred, y_proba) -> float | dict`` (``mypkg.metrics:profit``): NumPy arrays,
``y_proba`` one column per class in sorted class order, or ``None``. It fits every task,
its result is stored under its path, and it may set ``higher_is_better = False``.
Importing a path runs that module's code, so a spec naming one is trusted like code.

Errors are ``ConfigError`` for a name that is unknown, does not fit the task, or needs
inputs not given (probabilities, the training series, the features), and ``DataError``
when the data cannot be measured (a class missing from the test set, zeros for MAPE).
"""

from __future__ import annotations

import difflib
import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from gristmill.core.imports import import_object
from gristmill.errors import ConfigError, DataError, EvaluatorError
from gristmill.evaluation import classification as cls
from gristmill.evaluation import clustering, forecasting, regression
from gristmill.evaluation.inputs import prepare
from gristmill.evaluation.result import TASKS, EvaluationResult, Part, Scored, Task, number


@dataclass(frozen=True)
class Evaluator:
    """A named evaluator: the tasks it fits, what it needs, how its number ranks."""

    name: str
    tasks: tuple[Task, ...]
    measure: Callable[[Scored], Part]
    higher_is_better: bool | None
    """``None`` for a table (confusion matrix, residuals): it does not rank."""
    needs: str | None = None
    """``proba``, ``features``, ``train_y`` or ``y_true`` when the evaluator needs it."""


_C: tuple[Task, ...] = ("classification",)
_RF: tuple[Task, ...] = ("regression", "forecasting")
EVALUATORS: Mapping[str, Evaluator] = {
    e.name: e
    for e in (
        Evaluator("accuracy", _C, cls.accuracy, True),
        Evaluator("precision", _C, cls.precision, True),
        Evaluator("recall", _C, cls.recall, True),
        Evaluator("f1", _C, cls.f1, True),
        Evaluator("roc_auc", _C, cls.roc_auc, True, "proba"),
        Evaluator("pr_auc", _C, cls.pr_auc, True, "proba"),
        Evaluator("log_loss", _C, cls.log_loss, False, "proba"),
        Evaluator("brier", _C, cls.brier, False, "proba"),
        Evaluator("calibration", _C, cls.calibration, None, "proba"),
        Evaluator("confusion_matrix", _C, cls.confusion_matrix, None),
        Evaluator("rmse", _RF, regression.rmse, False),
        Evaluator("mae", _RF, regression.mae, False),
        Evaluator("r2", _RF, regression.r2, True),
        Evaluator("residuals", _RF, regression.residuals, None),
        Evaluator("mape", _RF, forecasting.mape, False),
        Evaluator("smape", _RF, forecasting.smape, False),
        Evaluator("mase", ("forecasting",), forecasting.mase, False, "train_y"),
        Evaluator("silhouette", ("clustering",), clustering.silhouette, True, "features"),
        Evaluator("adjusted_rand", ("clustering",), clustering.adjusted_rand, True, "y_true"),
    )
}
DEFAULTS: Mapping[Task, tuple[str, ...]] = {
    "classification": (
        "accuracy", "precision", "recall", "f1", "roc_auc", "pr_auc", "log_loss",
        "calibration", "confusion_matrix",
    ),
    "regression": ("rmse", "mae", "r2", "residuals"),
    "clustering": ("silhouette", "adjusted_rand"),
    "forecasting": ("mae", "rmse", "smape", "mase", "residuals"),
}  # fmt: skip


def evaluator_names(task: str | None = None) -> list[str]:
    """The built-in evaluators (for ``task``, if given), sorted."""
    chosen = _task(task) if task is not None else None
    return sorted(n for n, e in EVALUATORS.items() if chosen is None or chosen in e.tasks)


def check_evaluators(task: str, names: Iterable[str]) -> list[Evaluator]:
    """The evaluators called ``names`` for ``task``; ``ConfigError`` naming any that is not."""
    chosen = _task(task)
    return [_evaluator(name, chosen) for name in names]


def metric_tasks(name: str) -> tuple[Task, ...]:
    """The tasks metric ``name`` fits: a built-in's, or every task for a custom evaluator
    (imported now). ``ConfigError`` for an unknown name or a path that does not resolve."""
    return _evaluator(name, None).tasks


def evaluate(
    task: str,
    names: Sequence[str],
    y_true: Any,
    y_pred: Any,
    y_proba: Any = None,
    *,
    classes: Sequence[Any] | None = None,
    train_y: Any = None,
    features: Any = None,
) -> EvaluationResult:
    """Run the evaluators ``names`` (the task's defaults when empty) on one model's output.

    ``y_proba`` has one column per class: a frame whose columns are the classes, or an
    array in the order of ``classes``. ``train_y`` is the training series (MASE),
    ``features`` the rows the clusters were made from (silhouette). Defaults that need an
    input not given are left out; a named evaluator that needs one is a ``ConfigError``.
    """
    chosen = _task(task)
    scored, details = prepare(chosen, y_true, y_pred, y_proba, classes, train_y, features)
    if names:
        evaluators = check_evaluators(chosen, names)
        for evaluator in evaluators:
            _check_needs(evaluator, scored)
    else:
        defaults = [EVALUATORS[name] for name in DEFAULTS[chosen]]
        evaluators = [e for e in defaults if _missing(e, scored) is None]
    metrics: dict[str, Any] = {}
    curves: dict[str, Any] = {}
    for evaluator in evaluators:
        part = _run(evaluator, scored)
        metrics.update(part.metrics)
        curves.update(part.curves)
    return EvaluationResult(chosen, metrics, curves, details)


def higher_is_better(metric: str) -> bool:
    """Whether a larger value of ``metric`` is better; ``ConfigError`` if it does not rank."""
    evaluator = _evaluator(metric, None)
    if evaluator.higher_is_better is None:
        numbers = sorted(n for n, e in EVALUATORS.items() if e.higher_is_better is not None)
        raise ConfigError(
            f"metric {metric!r} is a table, not a number, and cannot rank models; "
            f"rank by one of: {', '.join(numbers)}"
        )
    return evaluator.higher_is_better


def _task(task: str) -> Task:
    for known in TASKS:
        if task == known:
            return known
    raise ConfigError(f"no task named {task!r}; known: {', '.join(TASKS)}")


def _evaluator(name: str, task: Task | None) -> Evaluator:
    if name in EVALUATORS:
        evaluator = EVALUATORS[name]
        if task is not None and task not in evaluator.tasks:
            raise ConfigError(
                f"metric {name!r} is for {' and '.join(evaluator.tasks)}; this is a {task} "
                f"task — use one of: {', '.join(evaluator_names(task))}"
            )
        return evaluator
    if ":" in name or "." in name:
        return _custom(name)
    close = difflib.get_close_matches(name, list(EVALUATORS), n=1)
    hint = f" (did you mean {close[0]!r}?)" if close else ""
    scope = f" for {task}" if task else ""
    raise ConfigError(
        f"no metric named {name!r}{hint}; known{scope}: "
        f"{', '.join(evaluator_names(task))}, or a function's import path (mypkg.mod:metric)"
    )


def _missing(evaluator: Evaluator, scored: Scored) -> str | None:
    given = {
        "proba": scored.proba is not None,
        "features": scored.features is not None,
        "train_y": scored.train_y is not None,
        "y_true": scored.y_true is not None,
    }
    return evaluator.needs if evaluator.needs and not given[evaluator.needs] else None


def _check_needs(evaluator: Evaluator, scored: Scored) -> None:
    what = {
        "proba": "predicted probabilities (y_proba); use a classifier with predict_proba "
        "or drop it",
        "features": "the features the model saw (features=...)",
        "train_y": "the training series (train_y=...)",
        "y_true": "the true groups (y_true)",
    }
    missing = _missing(evaluator, scored)
    if missing:
        raise ConfigError(f"metric {evaluator.name!r} needs {what[missing]}; none was given")


def _run(evaluator: Evaluator, scored: Scored) -> Part:
    try:
        return evaluator.measure(scored)
    except (ValueError, TypeError, ArithmeticError, IndexError) as exc:
        raise DataError(f"metric {evaluator.name!r} cannot be computed here: {exc}") from exc


def _custom(path: str) -> Evaluator:
    function = _import(path)

    def measure(scored: Scored) -> Part:
        try:
            value = function(scored.y_true, scored.y_pred, scored.proba)
        except Exception as exc:  # the user's code: said as its failure, never as ours
            raise EvaluatorError(path, f"{type(exc).__name__}: {exc}") from exc
        if isinstance(value, bool) or not isinstance(value, int | float | dict):
            raise ConfigError(
                f"evaluator {path!r} returned {type(value).__name__}; it must return a "
                "number or a dict"
            )
        try:
            json.dumps(value)
        except (TypeError, ValueError) as exc:
            raise ConfigError(
                f"evaluator {path!r} returned a dict that is not JSON-able (use plain "
                f"numbers, strings, lists): {exc}"
            ) from exc
        return Part({path: value if isinstance(value, dict) else number(value)}, {})

    direction = getattr(function, "higher_is_better", True)
    return Evaluator(path, TASKS, measure, bool(direction))


def _import(path: str) -> Callable[..., Any]:
    function = import_object(
        path,
        what="evaluator",
        kind="function",
        hint="name a function (y_true, y_pred, y_proba) -> float | dict",
    )
    if not callable(function):
        raise ConfigError(
            f"evaluator {path!r} is not a function but {type(function).__name__}; name a "
            "function (y_true, y_pred, y_proba) -> float | dict"
        )
    return function  # type: ignore[no-any-return]
