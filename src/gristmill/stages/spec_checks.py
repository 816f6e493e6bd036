"""What can be checked of a pipeline spec before any data moves.

``gristmill run`` and ``ingest --queue`` check a spec before they record a run; workers
check the spec of each event again before acting on it, since the custom code it names may
have changed on disk in between (a class renamed, or not written yet).
"""

from __future__ import annotations

import difflib
from collections.abc import Callable
from functools import partial

from gristmill.config.spec import CandidateSpec, PipelineSpec, chosen_split, training_target
from gristmill.errors import ConfigError, MissingExtraError, SpecError
from gristmill.evaluation import check_evaluators, evaluator_names
from gristmill.features.fitting import check_series_split
from gristmill.features.pipeline import FeaturePipeline
from gristmill.learners import learner_names, make_learner
from gristmill.learners.registry import ALGORITHMS, check_algorithm_path


def preflight(spec: PipelineSpec) -> None:
    """Check what can be checked before any data moves: feature steps and their options
    (custom ones imported and checked to be scikit-learn estimators), algorithm names and
    the classes algorithm import paths name, metric names. Every problem is reported at
    once: one is raised as it is (a ``ConfigError`` naming the feature set or candidate, a
    ``MissingExtraError``), several as one ``SpecError`` listing each by key path. A
    candidate whose parameters are wrong is left to fail alone, recorded with its error,
    when it trains."""
    problems: list[ConfigError | MissingExtraError] = []
    checks: list[Callable[[], object]] = [
        partial(FeaturePipeline.from_spec, feature_set, where=f"features.{name}")
        for name, feature_set in (spec.features or {}).items()
    ]
    checks.append(partial(_check_series_split, spec))
    checks.append(partial(_check_metric_names, spec))
    task = spec.train.task if spec.train else None
    checks += [
        partial(_check_candidate, candidate, task)
        for candidate in (spec.train.candidates if spec.train else [])
    ]
    for check in checks:
        try:
            check()
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


def _check_metric_names(spec: PipelineSpec) -> None:
    """Unknown metric names fail before any data moves (and a known one that does not fit
    ``train.task``, when the spec gives the task; otherwise training checks it)."""
    if spec.evaluate is None:
        return
    names = [spec.evaluate.metric, *spec.evaluate.evaluators]
    task = spec.train.task if spec.train else None
    if task is not None:
        try:
            check_evaluators(task, names)
        except ConfigError as exc:
            raise ConfigError(f"evaluate: {exc}; the task is {task} (set by train.task)") from exc
        return
    known = set(evaluator_names())
    for name in names:
        if name not in known and ":" not in name and "." not in name:
            close = difflib.get_close_matches(name, sorted(known), n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise ConfigError(
                f"evaluate: no metric named {name!r}{hint}; known: {', '.join(sorted(known))}, "
                "or a custom evaluator's import path (mypkg.metrics:my_score)"
            )
