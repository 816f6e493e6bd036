"""The ``monitor.rollback`` section of the pipeline spec: when a live version is demoted.

::

    monitor:
      rollback:
        max_miss_rate: 0.05      # latency budget misses per request above 5 %
        max_error_rate: 0.01     # server errors (5xx) per request above 1 %
        max_quality_drop: 0.05   # live quality this far below the offline metric
        quality_metric: accuracy # (default: evaluate.metric when live quality has it)
        on_drift: true           # a drift alert of the version
        min_requests: 100        # judged on no fewer requests (the minimum window)
        window: 5m               # over the last 5 minutes of the current policy revision
        cooldown: 30m            # no automatic rollback again so soon
        webhook: https://hooks.example/ml   # each demotion's alert is POSTed here

The deployment stage puts the rule on the traffic policies it writes; every prediction
server judges it after each serving stats flush (``training.rollback``), the drift and live
quality stages call the same demotion when ``on_drift`` / ``max_quality_drop`` cross.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from gristmill.config.features import parse_duration
from gristmill.core.quality_metrics import QUALITY_METRICS, quality_metric_problem

DEFAULT_WINDOW_SECONDS = 300.0
DEFAULT_COOLDOWN_SECONDS = 1800.0
__all__ = [
    "DEFAULT_COOLDOWN_SECONDS",
    "DEFAULT_WINDOW_SECONDS",
    "QUALITY_METRICS",
    "RollbackSpec",
    "quality_metric_problem",
]


class RollbackSpec(BaseModel):
    """``monitor.rollback`` (see the module docstring). ``window`` and ``cooldown`` are
    seconds, or durations such as ``90s``, ``5m``, ``1h`` (``cooldown: 0``: none)."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    max_miss_rate: float | None = Field(
        None, gt=0, le=1, description="Latency budget misses per request above this demote."
    )
    max_error_rate: float | None = Field(
        None, gt=0, le=1, description="Server errors (5xx) per request above this demote."
    )
    max_quality_drop: float | None = Field(
        None,
        gt=0,
        description="Live quality this far below the version's offline metric demotes "
        "(in the metric's units).",
    )
    quality_metric: str | None = Field(
        None,
        description="The metric of max_quality_drop: one of "
        f"{', '.join(QUALITY_METRICS)} (default: evaluate.metric when it is one of them, else "
        "the first of them the version's window and evaluation both have).",
    )
    on_drift: bool = Field(False, description="A drift alert of the version demotes it.")
    min_requests: int = Field(
        100, ge=1, description="Requests a version must have served in the window to be judged."
    )
    window: float = Field(
        DEFAULT_WINDOW_SECONDS, description="The span judged: seconds, or a duration (5m)."
    )
    cooldown: float = Field(
        DEFAULT_COOLDOWN_SECONDS,
        description="No automatic rollback of the model this long after the last one.",
    )
    webhook: str | None = Field(None, description="An http(s) URL POSTed each demotion's alert.")

    @field_validator("window", mode="before")
    @classmethod
    def _window(cls, value: Any) -> float:
        return parse_duration(value)

    @field_validator("cooldown", mode="before")
    @classmethod
    def _cooldown(cls, value: Any) -> float:
        if value in (0, "0", 0.0):
            return 0.0
        return parse_duration(value)

    @field_validator("quality_metric")
    @classmethod
    def _quality_metric(cls, value: str | None) -> str | None:
        problem = None if value is None else quality_metric_problem(value)
        if problem is not None:
            raise ValueError(problem)
        return value

    @field_validator("webhook")
    @classmethod
    def _webhook(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith(("http://", "https://")):
            raise ValueError(f"{value!r} is not an http(s) URL (e.g. https://hooks.example/x)")
        return value

    @model_validator(mode="after")
    def _a_trigger(self) -> RollbackSpec:
        if (
            self.max_miss_rate is None
            and self.max_error_rate is None
            and self.max_quality_drop is None
            and not self.on_drift
        ):
            raise ValueError(
                "a rollback rule needs at least one of max_miss_rate, max_error_rate, "
                "max_quality_drop or on_drift: true"
            )
        return self

    @property
    def window_minutes(self) -> float:
        return self.window / 60

    @property
    def cooldown_minutes(self) -> float:
        return self.cooldown / 60
