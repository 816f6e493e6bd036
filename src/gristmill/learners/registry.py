"""The algorithm registry: a learner is made from its name, hyper-parameters and task.

Built-in algorithms are known by name (``random_forest``, ``arima`` …); ``lightgbm`` and
``xgboost`` are known too but imported only when used, and raise ``MissingExtraError`` with
the pip command when their package is absent. Any other scikit-learn-compatible estimator
is named by import path (``sklearn.svm:SVC`` or ``mypkg.module.MyEstimator``); its task is
read from the estimator (classifier, regressor, clusterer) or given. Importing a path runs
that module's code, so a spec naming one is trusted like code, and loading a model holding
one needs its package trusted explicitly (see ``learners.serialization``).

A few names carry defaults other than their library's (``logistic_regression``
``max_iter=1000``, ``random_forest`` ``n_jobs=-1``, ``lightgbm`` ``verbosity=-1``); the
spec's params override them.
"""

from __future__ import annotations

import difflib
import inspect
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from sklearn.base import ClassifierMixin, ClusterMixin, RegressorMixin, is_classifier, is_regressor

from gristmill.core.estimators import check_copyable, check_estimator_class
from gristmill.core.imports import import_object
from gristmill.errors import ConfigError
from gristmill.learners.base import TASKS, Learner, Task
from gristmill.learners.estimators import EstimatorLearner
from gristmill.learners.forecasting import ArimaLearner, SarimaxLearner


@dataclass(frozen=True)
class Algorithm:
    """A named algorithm: the estimator class (``module:Class``) for each task it does."""

    name: str
    estimators: Mapping[Task, str]
    install: str | None = None
    """The pip command for an optional package; ``None`` for scikit-learn."""
    categories: bool = False
    encode_labels: bool = False
    defaults: Mapping[str, Any] = field(default_factory=dict)
    main: tuple[str, ...] = ()
    """The parameters a spec most often sets (listed in docs/spec.md, checked to exist)."""


def _both(classifier: str, regressor: str) -> dict[Task, str]:
    return {"classification": classifier, "regression": regressor}


ALGORITHMS: Mapping[str, Algorithm] = {
    algorithm.name: algorithm
    for algorithm in (
        Algorithm(
            "linear_regression",
            {"regression": "sklearn.linear_model:LinearRegression"},
            main=("fit_intercept", "positive"),
        ),
        Algorithm(
            "logistic_regression",
            {"classification": "sklearn.linear_model:LogisticRegression"},
            defaults={"max_iter": 1000},
            main=("C", "class_weight", "max_iter", "solver"),
        ),
        Algorithm(
            "decision_tree",
            _both("sklearn.tree:DecisionTreeClassifier", "sklearn.tree:DecisionTreeRegressor"),
            main=("max_depth", "min_samples_leaf", "criterion", "random_state"),
        ),
        Algorithm(
            "random_forest",
            _both(
                "sklearn.ensemble:RandomForestClassifier", "sklearn.ensemble:RandomForestRegressor"
            ),
            # Trees grow on threads that yield the CPU: a forest fills the cores the other
            # candidates leave idle (an executor worker caps only OpenMP and BLAS pools).
            defaults={"n_jobs": -1},
            main=("n_estimators", "max_depth", "min_samples_leaf", "max_features", "random_state"),
        ),
        Algorithm(
            "gradient_boosting",
            _both(
                "sklearn.ensemble:HistGradientBoostingClassifier",
                "sklearn.ensemble:HistGradientBoostingRegressor",
            ),
            categories=True,
            main=("learning_rate", "max_iter", "max_depth", "max_leaf_nodes", "random_state"),
        ),
        Algorithm(
            "lightgbm",
            _both("lightgbm:LGBMClassifier", "lightgbm:LGBMRegressor"),
            install="pip install lightgbm",
            categories=True,
            defaults={"verbosity": -1},
            main=("n_estimators", "learning_rate", "num_leaves", "max_depth"),
        ),
        Algorithm(
            "xgboost",
            _both("xgboost:XGBClassifier", "xgboost:XGBRegressor"),
            install="pip install xgboost",
            encode_labels=True,
            main=("n_estimators", "learning_rate", "max_depth", "subsample"),
        ),
        Algorithm(
            "kmeans",
            {"clustering": "sklearn.cluster:KMeans"},
            main=("n_clusters", "n_init", "random_state"),
        ),
    )
}
FORECASTERS: Mapping[str, type[SarimaxLearner]] = {"arima": ArimaLearner, "sarimax": SarimaxLearner}


def learner_names() -> list[str]:
    """The names of the known algorithms, sorted (optional ones included)."""
    return sorted([*ALGORITHMS, *FORECASTERS])


def algorithms_for(task: Task) -> list[str]:
    """The known algorithms that do ``task``, sorted."""
    named = [name for name, algorithm in ALGORITHMS.items() if task in algorithm.estimators]
    return sorted([*named, *(FORECASTERS if task == "forecasting" else ())])


def make_learner(
    algorithm: str, params: Mapping[str, Any] | None = None, *, task: str | None = None
) -> Learner:
    """The learner ``algorithm`` with hyper-parameters ``params``; ``ConfigError`` if it cannot be.

    ``task`` is needed where the algorithm does more than one (``random_forest``: the
    training stage infers it from the label); given for the others, it must match.
    Parameters are checked (names and values) before any data is seen.
    """
    params = dict(params or {})
    chosen = _task(task)
    learner: Learner
    if algorithm in FORECASTERS:
        _same_task(algorithm, ["forecasting"], chosen)
        learner = _construct(algorithm, FORECASTERS[algorithm], params)
    elif algorithm in ALGORITHMS:
        entry = ALGORITHMS[algorithm]
        resolved = _resolve_task(entry, chosen)
        factory = _import(algorithm, entry.estimators[resolved], entry.install)
        estimator = _construct(algorithm, factory, {**entry.defaults, **params})
        learner = EstimatorLearner(
            algorithm,
            estimator,
            resolved,
            categories=entry.categories,
            encode_labels=entry.encode_labels,
        )
    elif ":" in algorithm or "." in algorithm:
        estimator = _construct(algorithm, _import(algorithm, algorithm, None), params)
        check_copyable(estimator, what=f"algorithm {algorithm!r}")
        task_done = _estimator_task(algorithm, estimator, chosen)
        # An imported estimator may take text or other columns itself (a Pipeline).
        learner = EstimatorLearner(algorithm, estimator, task_done, needs_numbers=False)
    else:
        close = difflib.get_close_matches(algorithm, learner_names(), n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise ConfigError(
            f"no algorithm named {algorithm!r}{hint}; known: {', '.join(learner_names())}, "
            "or a scikit-learn-compatible estimator's import path (sklearn.svm:SVC)"
        )
    learner.check_params()
    return learner


def _task(task: str | None) -> Task | None:
    if task is None:
        return None
    for known in TASKS:
        if task == known:
            return known
    raise ConfigError(f"no task named {task!r}; known: {', '.join(TASKS)}")


def _same_task(algorithm: str, does: list[Task], task: Task | None) -> None:
    if task is not None and task not in does:
        others = algorithms_for(task)
        raise ConfigError(
            f"algorithm {algorithm!r} is for {' and '.join(does)}, not {task}; "
            f"for {task} use one of: {', '.join(others) or '(none built in)'}, "
            "or an estimator's import path (in a pipeline, `train.task` sets the task)"
        )


def _resolve_task(entry: Algorithm, task: Task | None) -> Task:
    if task is None:
        if len(entry.estimators) == 1:
            return next(iter(entry.estimators))
        raise ConfigError(
            f"algorithm {entry.name!r} does {' and '.join(entry.estimators)}; say which "
            "with task=... (the training stage infers it from the label)"
        )
    _same_task(entry.name, list(entry.estimators), task)
    return task


def _estimator_task(path: str, estimator: Any, task: Task | None) -> Task:
    found: Task | None = None
    if is_classifier(estimator):
        found = "classification"
    elif is_regressor(estimator):
        found = "regression"
    elif isinstance(estimator, ClusterMixin):
        found = "clustering"
    if found is None:
        if task is None:
            raise ConfigError(
                f"cannot tell what {path!r} does (not a classifier, regressor or clusterer); "
                f"say which with task=... ({', '.join(TASKS)})"
            )
        return task
    _same_task(path, [found], task)
    return found


def _construct(algorithm: str, factory: Any, params: dict[str, Any]) -> Any:
    signature = inspect.signature(factory)
    open_ended = any(p.kind is p.VAR_KEYWORD for p in signature.parameters.values())
    if not open_ended:
        # Keyword-only or positional: scikit-learn's get_params reads the same signature.
        valid = sorted(name for name in signature.parameters if name != "self")
        unknown = [name for name in params if name not in valid]
        if unknown:
            close = difflib.get_close_matches(unknown[0], valid, n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise ConfigError(
                f"algorithm {algorithm!r} has no parameter {unknown[0]!r}{hint}; "
                f"its parameters: {', '.join(valid) or '(none)'}"
            )
    try:
        return factory(**params)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"algorithm {algorithm!r} cannot be made from its params: {exc}") from exc


def _import(algorithm: str, path: str, install: str | None) -> Any:
    what = "algorithm" if algorithm == path else f"algorithm {algorithm!r}: estimator"
    factory = import_object(
        path,
        what=what,
        kind="class",
        hint="name a scikit-learn-compatible estimator class (sklearn.svm:SVC)",
        install=install,
    )
    if not isinstance(factory, type):
        raise ConfigError(
            f"cannot use algorithm {path!r}: it is a {type(factory).__name__}, not a class; "
            "name a scikit-learn-compatible estimator class (sklearn.svm:SVC)"
        )
    if not callable(getattr(factory, "fit", None)):
        raise ConfigError(f"{path!r} is not an estimator: it has no fit method")
    check_estimator_class(
        factory,
        what=f"algorithm {path!r}",
        has="fit",
        bases="BaseEstimator and one of ClassifierMixin, RegressorMixin, ClusterMixin",
    )
    return factory


def check_algorithm_path(algorithm: str) -> None:
    """``ConfigError`` unless the import path ``algorithm`` names a scikit-learn estimator
    class (importable, with ``fit`` and ``get_params``); its parameters are not checked."""
    _import(algorithm, algorithm, None)


def parameter_names(algorithm: str, task: str | None = None) -> list[str] | None:
    """The hyper-parameters ``algorithm`` takes, as its estimator's ``get_params()`` (its
    ``__init__``) names them: for ``task``, or for any task it does; ``None`` when it takes
    any keyword (``**kwargs``) or is not known. Imports the estimator (``MissingExtraError``
    for an optional library that is absent, ``ConfigError`` for a path that does not
    resolve)."""
    chosen = _task(task)
    if algorithm in FORECASTERS:
        factories: list[Any] = [FORECASTERS[algorithm]]
    elif algorithm in ALGORITHMS:
        entry = ALGORITHMS[algorithm]
        paths = [p for t, p in entry.estimators.items() if chosen in (None, t)]
        if not paths:  # it does not do the task: said where the task is checked
            return None
        factories = [_import(algorithm, path, entry.install) for path in paths]
    elif ":" in algorithm or "." in algorithm:
        factories = [_import(algorithm, algorithm, None)]
    else:
        return None
    names: set[str] = set()
    for factory in factories:
        parameters = inspect.signature(factory).parameters.values()
        if any(p.kind is p.VAR_KEYWORD for p in parameters):
            return None
        names.update(p.name for p in parameters if p.name != "self")
    return sorted(names)


def estimator_tasks(algorithm: str) -> list[Task] | None:
    """The tasks ``algorithm`` can do, without making it (an import path is imported and
    its class read: classifier, regressor, clusterer); ``None`` when it cannot be told."""
    if algorithm in FORECASTERS:
        return ["forecasting"]
    if algorithm in ALGORITHMS:
        return list(ALGORITHMS[algorithm].estimators)
    if ":" not in algorithm and "." not in algorithm:
        return None
    factory = _import(algorithm, algorithm, None)
    kinds: list[tuple[type, Task]] = [
        (ClassifierMixin, "classification"),
        (RegressorMixin, "regression"),
        (ClusterMixin, "clustering"),
    ]
    found = [task for mixin, task in kinds if issubclass(factory, mixin)]
    return found or None
