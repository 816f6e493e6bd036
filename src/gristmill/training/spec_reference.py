"""The parts of docs/spec.md written from the registries: algorithms and metrics.

docs/spec.md holds blocks between ``<!-- generated: NAME -->`` and ``<!-- end generated -->``;
``render`` writes each block afresh from the code (the algorithm registry with each
estimator's main parameters and their defaults, the evaluator registry), so the reference
cannot drift from what a spec may name: a test holds the file equal to its rendering.
``make docs`` (``python -m gristmill.training.spec_reference docs/spec.md``) rewrites it.

Defaults are read from the estimators' signatures, except for optional libraries
(``lightgbm``, ``xgboost``), which are never imported here: the page is the same on every
machine.
"""

from __future__ import annotations

import inspect
import re
import sys
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from gristmill.core.imports import import_object
from gristmill.evaluation.registry import EVALUATORS
from gristmill.learners.base import TASKS
from gristmill.learners.registry import ALGORITHMS, FORECASTERS
from gristmill.training.assess import PICTURES
from gristmill.training.tuning import DEFAULT_METRIC

FORECAST_MAIN = ("order", "seasonal_order", "trend", "maxiter")
BLOCK = re.compile(
    r"(<!-- generated: (?P<name>[a-z_]+) -->\n).*?(<!-- end generated -->)", re.DOTALL
)
NEEDS = {
    "proba": "class probabilities (a classifier with `predict_proba`)",
    "train_y": "the training series",
    "features": "the feature rows",
    "y_true": "a label (a clustering without one skips it)",
}


def algorithms() -> str:
    """The table of algorithm names: tasks, estimator, main parameters, gristmill's defaults."""
    lines = [
        "| `algorithm` | tasks | estimator | main parameters (default) | gristmill sets |",
        "|---|---|---|---|---|",
    ]
    for name in sorted(ALGORITHMS):
        entry = ALGORITHMS[name]
        classes = " · ".join(f"`{path}`" for path in dict.fromkeys(entry.estimators.values()))
        install = f" (`{entry.install}`)" if entry.install else ""
        signature = None if entry.install else _signature(next(iter(entry.estimators.values())))
        lines.append(
            f"| `{name}` | {', '.join(entry.estimators)} | {classes}{install} | "
            f"{_parameters(entry.main, signature)} | {_settings(entry.defaults)} |"
        )
    for name in sorted(FORECASTERS):
        learner = FORECASTERS[name]
        lines.append(
            f"| `{name}` | forecasting | `statsmodels.tsa.statespace.sarimax:SARIMAX` | "
            f"{_parameters(FORECAST_MAIN, inspect.signature(learner))} | "
            f"{_forecast_trend(name)} |"
        )
    return "\n".join(lines)


def metrics() -> str:
    """The table of metric names: tasks, direction, what they need; then each task's
    default metric and what is always measured (for pictures)."""
    lines = ["| metric | tasks | better | needs |", "|---|---|---|---|"]
    for name in sorted(EVALUATORS):
        evaluator = EVALUATORS[name]
        better = {True: "higher", False: "lower", None: "— (a table: cannot rank)"}
        needs = NEEDS.get(evaluator.needs or "", "")
        lines.append(
            f"| `{name}` | {', '.join(evaluator.tasks)} | "
            f"{better[evaluator.higher_is_better]} | {needs} |"
        )
    lines += ["", "| task | metrics | default `evaluate.metric` | always measured |"]
    lines.append("|---|---|---|---|")
    for task in TASKS:
        names = sorted(n for n, e in EVALUATORS.items() if task in e.tasks)
        default = DEFAULT_METRIC.get(task, "smape")
        pictures = ", ".join(f"`{p}`" for p in PICTURES.get(task, [])) or "—"
        lines.append(
            f"| {task} | {', '.join(f'`{n}`' for n in names)} | `{default}` | {pictures} |"
        )
    return "\n".join(lines)


SECTIONS: Mapping[str, Callable[[], str]] = {"algorithms": algorithms, "metrics": metrics}


def render(text: str) -> str:
    """``text`` with every generated block written afresh; ``KeyError`` for an unknown one."""

    def block(match: re.Match[str]) -> str:
        body = SECTIONS[match.group("name")]()
        return f"{match.group(1)}{body}\n{match.group(3)}"

    return BLOCK.sub(block, text)


def main(argv: list[str]) -> int:
    """``spec_reference PATH [--check]``: rewrite PATH's generated blocks (or, with
    ``--check``, exit 1 when they are not up to date)."""
    path = Path(argv[0])
    text = path.read_text()
    fresh = render(text)
    if "--check" in argv[1:]:
        return 0 if fresh == text else 1
    path.write_text(fresh)
    return 0


def _signature(path: str) -> inspect.Signature:
    return inspect.signature(import_object(path, what="estimator", kind="class"))


def _parameters(names: tuple[str, ...], signature: inspect.Signature | None) -> str:
    shown = []
    for name in names:
        if signature is None:
            shown.append(f"`{name}`")
            continue
        default = signature.parameters[name].default
        shown.append(f"`{name}` ({_value(default)})")
    return ", ".join(shown)


def _settings(defaults: Mapping[str, Any]) -> str:
    return ", ".join(f"`{k}={_value(v)}`" for k, v in defaults.items()) or "—"


def _forecast_trend(name: str) -> str:
    if name == "arima":
        return "`trend`: `c` without differencing, else `n` (statsmodels `ARIMA`'s)"
    return "`trend`: none (statsmodels `SARIMAX`'s)"


def _value(value: Any) -> str:
    if value is inspect.Parameter.empty:
        return "required"
    if isinstance(value, str):
        return repr(value)
    return str(value)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
