"""Evaluation: metrics and curves by task, chosen by name; pictures; the leaderboard."""

from gristmill.evaluation.leaderboard import Standing, leaderboard
from gristmill.evaluation.registry import (
    check_evaluators,
    evaluate,
    evaluator_names,
    higher_is_better,
    metric_tasks,
)
from gristmill.evaluation.rendering import render_curves
from gristmill.evaluation.result import TASKS, EvaluationResult, Task

__all__ = [
    "TASKS",
    "EvaluationResult",
    "Standing",
    "Task",
    "check_evaluators",
    "evaluate",
    "evaluator_names",
    "higher_is_better",
    "leaderboard",
    "metric_tasks",
    "render_curves",
]
