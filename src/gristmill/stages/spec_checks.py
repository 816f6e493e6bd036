"""What can be checked of a pipeline spec before any data moves.

``gristmill run`` and ``ingest --queue`` check a spec before they record a run; workers
check the spec of each event again before acting on it, since the custom code it names may
have changed on disk in between (a class renamed, or not written yet).
"""

from __future__ import annotations

import difflib
from collections.abc import Callable
from functools import partial
from typing import cast

from gristmill.config.spec import CandidateSpec, PipelineSpec, chosen_split, training_target
from gristmill.errors import ConfigError, MissingExtraError, SpecError
from gristmill.evaluation import evaluator_names, metric_tasks
from gristmill.features.fitting import check_series_split
from gristmill.features.pipeline import FeaturePipeline
from gristmill.learners import learner_names, make_learner
from gristmill.learners.base import Task
from gristmill.learners.registry import (
    ALGORITHMS,
    FORECASTERS,
    algorithms_for,
    check_algorithm_path,
    estimator_tasks,
    parameter_names,
)
from gristmill.segregation.strategies import resolve_custom


def preflight(spec: PipelineSpec) -> None:
    """Check what can be checked before any data moves: feature steps and their options
    (custom ones imported and checked to be scikit-learn estimators), algorithm names, the
    classes algorithm import paths name and the names of their parameters (``params`` and
    ``tune.space``), a custom split's import path, metric names, custom evaluators'
    import paths, and whether the metrics fit the task when the spec alone tells the task
    (``train.task``, the algorithms, a set without a label), and so whether each
    candidate's algorithm does that task. Every problem is reported at
    once: one is raised as it is (a ``ConfigError`` naming its key path, a
    ``MissingExtraError``), several as one ``SpecError`` listing each by key path. A
    candidate whose parameter *values* are wrong is left to fail alone, recorded with its
    error, when it trains."""
    problems: list[ConfigError | MissingExtraError] = []
    checks: list[Callable[[], object]] = [
        partial(FeaturePipeline.from_spec, feature_set, where=f"features.{name}")
        for name, feature_set in (spec.features or {}).items()
    ]
    checks.append(partial(_check_split, spec))
    checks.append(partial(_check_series_split, spec))
    checks.append(partial(_check_metric_names, spec))
    task = spec.train.task if spec.train else None
    known = _known_tasks(spec)
    decided = known if known is not None and known[2] else None
    for index, candidate in enumerate(spec.train.candidates if spec.train else []):
        checks.append(partial(_check_candidate, candidate, task))
        checks.append(partial(_check_fits_task, candidate, index, decided))
        checks.append(partial(_check_parameters, candidate, index, task))
    for check in checks:
        try:
            check()
        except SpecError as exc:  # several problems of one check, each by its path
            problems.extend(ConfigError(f"{path}: {message}") for path, message in exc.problems)
        except (ConfigError, MissingExtraError) as exc:
            problems.append(exc)
    if len(problems) == 1:
        raise problems[0]
    if problems:
        pairs = [_problem(exc) for exc in problems]
        text = "\n".join(f"  {path}: {message}" for path, message in pairs)
        raise SpecError(f"the spec has {len(pairs)} problems:\n{text}", pairs)


def _problem(error: Exception) -> tuple[str, str]:
    """``(key path, message)`` of a preflight error whose message starts with its path."""
    path, sep, message = str(error).partition(": ")
    if sep and " " not in path.split(" (")[0]:
        return path, message
    return "(spec)", str(error)


def _check_series_split(spec: PipelineSpec) -> None:
    """Series steps (lags, windows, gap filling) in the set training uses need a split that
    keeps a series' rows together in time (``features.fitting``)."""
    name = training_target(spec)
    section = (spec.features or {}).get(name or "")
    if name is None or section is None:
        return
    try:
        pipeline = FeaturePipeline.from_spec(section, where=f"features.{name}")
    except ConfigError:
        return  # reported by the check of the section itself
    if pipeline.reads_rows:
        check_series_split(name, chosen_split(spec).strategy)


def _check_candidate(candidate: CandidateSpec, task: str | None) -> None:
    known = set(learner_names())
    path = ":" in candidate.algorithm or "." in candidate.algorithm
    if not path and candidate.algorithm not in known:
        raise ConfigError(
            f"train.candidates.{candidate.name}: no algorithm named "
            f"{candidate.algorithm!r}; known: {', '.join(sorted(known))}"
        )
    if path:
        try:
            check_algorithm_path(candidate.algorithm)
        except ConfigError as exc:
            raise ConfigError(f"train.candidates.{candidate.name}: {exc}") from exc
    entry = ALGORITHMS.get(candidate.algorithm)
    some_task = task or (next(iter(entry.estimators)) if entry else None)
    try:  # an optional library that is not installed (lightgbm, xgboost) fails now
        make_learner(candidate.algorithm, candidate.params, task=some_task)
    except MissingExtraError as exc:
        raise MissingExtraError(f"train.candidates.{candidate.name}: {exc}") from exc
    except ConfigError:
        pass  # the candidate fails alone, recorded with its error, when it trains


def _check_fits_task(
    candidate: CandidateSpec, index: int, decided: tuple[str, str, bool] | None
) -> None:
    """An algorithm that cannot do the task the spec decides (``train.task``, a forecaster,
    a set without a label) is refused by its key path, naming the task and the algorithms
    that do it; when the label decides the task, training tells (the candidate fails)."""
    if decided is None:
        return
    task, why, _ = decided
    try:
        tasks = estimator_tasks(candidate.algorithm)
    except (ConfigError, MissingExtraError):
        return  # the algorithm itself is reported by _check_candidate
    if tasks is None or task in tasks:
        return
    doing = ", ".join(algorithms_for(cast(Task, task)))
    raise ConfigError(
        f"train.candidates[{index}].algorithm: candidate {candidate.name!r}: "
        f"{candidate.algorithm!r} does {' and '.join(tasks)}, not {task} — this is a {task} "
        f"task ({why}); algorithms for {task}: {doing} (or an estimator's import path)"
    )


def _check_parameters(candidate: CandidateSpec, index: int, task: str | None) -> None:
    """Parameter names the estimator does not take (``get_params``), in ``params`` and in
    ``tune.space``, each named by its key path with the closest name it does take."""
    try:
        valid = parameter_names(candidate.algorithm, task)
    except (ConfigError, MissingExtraError):
        return  # the algorithm itself is reported by _check_candidate
    if valid is None:
        return
    where = f"train.candidates[{index}]"
    space = candidate.tune.space if candidate.tune else {}
    named = [("params", n) for n in candidate.params] + [("tune.space", n) for n in space]
    problems = []
    for section, name in named:
        if name in valid:
            continue
        close = difflib.get_close_matches(name, valid, n=1)
        hint = f"did you mean {close[0]!r}? " if close else ""
        problems.append(
            (
                f"{where}.{section}.{name}",
                f"candidate {candidate.name!r}: algorithm {candidate.algorithm!r} has no "
                f"parameter {name!r}; {hint}its parameters: {', '.join(valid)}",
            )
        )
    if len(problems) == 1:
        raise ConfigError(": ".join(problems[0]))
    if problems:
        raise SpecError("several unknown parameters", problems)


def _check_split(spec: PipelineSpec) -> None:
    """A custom split's import path resolves to a function."""
    split = spec.split
    if split is None or split.strategy != "custom" or not split.custom:
        return
    try:
        resolve_custom(split.custom)
    except ConfigError as exc:
        raise ConfigError(f"split.custom: {exc}") from exc


def _known_tasks(spec: PipelineSpec) -> tuple[str, str, bool] | None:
    """``(task, why, decided)`` when the spec alone tells the task (``decided``: by the
    rule of docs/spec.md — ``train.task``, a forecaster, a set without a label) or leaves
    the candidates only one task to do between classification and regression (a metric
    of another can then rank none of them); ``None`` when the label will decide."""
    if spec.train is None:
        return None
    if spec.train.task:
        return spec.train.task, "set by train.task", True
    algorithms = [c.algorithm for c in spec.train.candidates]
    forecasters = [a for a in algorithms if a in FORECASTERS]
    if forecasters:
        return "forecasting", f"{forecasters[0]} forecasts; set train.task to override", True
    target = training_target(spec)
    section = (spec.features or {}).get(target or "")
    if section is not None and not section.label:
        return "clustering", f"feature set {target!r} has no label", True
    done: set[str] = set()
    for algorithm in algorithms:
        try:
            tasks = estimator_tasks(algorithm)
        except (ConfigError, MissingExtraError):
            tasks = None
        if tasks is None:
            return None
        done |= set(tasks) & {"classification", "regression"}
    if len(done) != 1:
        return None
    task = next(iter(done))
    return task, f"the candidates do only {task} ({', '.join(dict.fromkeys(algorithms))})", False


def _check_metric_names(spec: PipelineSpec) -> None:
    """Unknown metric names and custom evaluators' paths that do not resolve fail before
    any data moves, and so does a known metric that fits none of the tasks the spec
    allows (``train.task``, the algorithms, a set without a label); otherwise training
    checks it once the label told the task."""
    if spec.evaluate is None:
        return
    named = [("evaluate.metric", spec.evaluate.metric)] + [
        (f"evaluate.evaluators[{i}]", name) for i, name in enumerate(spec.evaluate.evaluators)
    ]
    known = _known_tasks(spec)
    problems = []
    for path, name in named:
        try:
            fits = metric_tasks(name)
        except ConfigError as exc:
            problems.append((path, str(exc)))
            continue
        if known is not None and known[0] not in fits:
            problems.append((path, _misfit(name, fits, *known)))
    if len(problems) == 1:
        raise ConfigError(": ".join(problems[0]))
    if problems:
        raise SpecError("several metric problems", problems)


def _misfit(name: str, fits: tuple[str, ...], task: str, why: str, decided: bool) -> str:
    valid = ", ".join(evaluator_names(task))
    told = f"this is a {task} task" if decided else why
    fix = f"the task is {task} ({why})" if decided else f"or add a candidate for {fits[0]}"
    return f"metric {name!r} is for {' and '.join(fits)}; {told} — use one of: {valid}; {fix}"
