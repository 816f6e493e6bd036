"""docs/spec.md lists what a spec may name — every algorithm, metric, step, split strategy
and task — and its generated tables are what the registries say now."""

from __future__ import annotations

import inspect
import re
from pathlib import Path

import pytest

from gristmill.core.imports import import_object
from gristmill.evaluation.registry import EVALUATORS
from gristmill.features.steps import STEPS
from gristmill.learners.base import TASKS
from gristmill.learners.registry import ALGORITHMS, FORECASTERS
from gristmill.segregation import known_strategies
from gristmill.training.spec_reference import FORECAST_MAIN, main, render

SPEC_DOC = Path(__file__).parents[3] / "docs" / "spec.md"


@pytest.fixture(scope="module")
def doc() -> str:
    return SPEC_DOC.read_text()


def section(doc: str, title: str) -> str:
    start = doc.index(f"\n### {title}")
    end = doc.find("\n## ", start + 1)
    following = doc.find("\n### ", start + 1)
    return doc[start : min(e for e in (end, following) if e > 0)]


def test_the_generated_tables_are_up_to_date(doc: str) -> None:
    assert render(doc) == doc, "run `make docs` and commit docs/spec.md"
    assert main([str(SPEC_DOC), "--check"]) == 0


def test_every_algorithm_is_in_the_table_with_its_estimator(doc: str) -> None:
    table = section(doc, "Algorithms")
    for name, algorithm in ALGORITHMS.items():
        assert f"| `{name}` |" in table
        for path in algorithm.estimators.values():
            assert f"`{path}`" in table
    for name in FORECASTERS:
        assert f"| `{name}` | forecasting |" in table


def test_the_main_parameters_are_parameters_of_the_estimator() -> None:
    for name, algorithm in ALGORITHMS.items():
        assert algorithm.main, f"{name} lists no main parameter"
        if algorithm.install:  # an optional library, not installed here
            continue
        for path in algorithm.estimators.values():
            accepted = inspect.signature(import_object(path, what="estimator")).parameters
            assert set(algorithm.main) <= set(accepted), (name, path)
    for learner in FORECASTERS.values():
        assert set(FORECAST_MAIN) <= set(inspect.signature(learner).parameters)


def test_every_metric_is_listed_for_its_tasks(doc: str) -> None:
    table = section(doc, "Metrics")
    for name, evaluator in EVALUATORS.items():
        assert re.search(rf"\| `{name}` \| {', '.join(evaluator.tasks)} \|", table), name
    for task in TASKS:
        assert f"| {task} |" in table


def test_every_step_strategy_and_task_is_documented(doc: str) -> None:
    steps = section(doc, "Steps")
    for name in STEPS:
        assert f"| `{name}` |" in steps, name
    strategies = section(doc, "Split strategies")
    for name in known_strategies():
        assert f"| `{name}` |" in strategies, name
    chosen = section(doc, "How the task is chosen")
    for task in TASKS:
        assert f"`{task}`" in doc and task in chosen + doc
    tuning = section(doc, "Tuning: how `tune.space` types its values")
    assert "[low, high, log]" in tuning
