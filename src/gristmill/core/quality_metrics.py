"""The figures live quality measures, and what a rollback rule's ``quality_metric`` may be.

Kept apart from the spec's models (``config.rollback``, pydantic) so the stores and the
CLI's start-up can name them without importing pydantic.
"""

from __future__ import annotations

QUALITY_METRICS = ("accuracy", "f1", "roc_auc", "rmse", "mae", "mape")
"""The figures live quality measures (classifiers' first, then regressors'): what
``quality_metric`` may name, and — without one — the order the first both the window and
the version's evaluation have is taken in."""


def quality_metric_problem(value: object) -> str | None:
    """What is wrong with ``value`` as a ``quality_metric``, or ``None``."""
    if isinstance(value, str) and value in QUALITY_METRICS:
        return None
    return f"{value!r} is not a metric live quality measures; one of: {', '.join(QUALITY_METRICS)}"
