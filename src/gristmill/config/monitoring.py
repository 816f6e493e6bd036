"""The ``monitor:`` section of the pipeline spec: how the monitoring stage judges drift.

The monitoring stage counts the prediction log of each model version in windows of
``window`` (aligned to whole multiples of it since 1970-01-01 UTC: ``1h`` windows start on
the hour) and compares, per window, every input column's and the prediction's distribution
with the version's reference (its training rows). ``drift`` says how a column is judged;
``webhook`` is POSTed each alert.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from gristmill.config.features import parse_duration
from gristmill.config.rollback import RollbackSpec
from gristmill.config.schedules import every_text

DriftMethodName = Literal["psi", "ks", "chi2", "auto"]

DEFAULT_WINDOW = "1h"
DEFAULT_QUALITY_WINDOW = 3600.0
"""Seconds of a live quality window when the spec names none (``monitor.quality_window``)."""
DEFAULT_MIN_ROWS = 500


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class ColumnDriftSpec(_Section):
    """One column's own way of being judged; what is not given is the ``drift:`` default."""

    method: DriftMethodName | None = None
    psi: float | None = Field(None, gt=0)
    ks_pvalue: float | None = Field(None, gt=0, lt=1)
    chi2_pvalue: float | None = Field(None, gt=0, lt=1)
    min_rows: int | None = Field(None, ge=1)
    ignore: bool = Field(False, description="Not judged (its figures are still kept).")


class DriftSpec(_Section):
    """How a column's drift is judged.

    ``method``: ``psi`` (the default) judges the population stability index against
    ``psi``; ``ks`` the Kolmogorov-Smirnov test's p-value against ``ks_pvalue`` (numbers;
    categories fall back to chi-square); ``chi2`` the chi-square test's against
    ``chi2_pvalue``; ``auto`` is preparation's rule (PSI for numbers, chi-square for
    categories). Every statistic is computed and kept whatever the method. A window is
    judged once it holds ``min_rows`` rows of the column. ``columns`` overrides any of these
    per column (``prediction`` names the prediction).
    """

    method: DriftMethodName = "psi"
    psi: float = Field(0.2, gt=0, description="PSI above this is drift.")
    ks_pvalue: float = Field(0.01, gt=0, lt=1, description="KS p-value below this is drift.")
    chi2_pvalue: float = Field(
        0.01, gt=0, lt=1, description="Chi-square p-value below this is drift."
    )
    min_rows: int = Field(
        DEFAULT_MIN_ROWS, ge=1, description="Rows a window needs before it is judged."
    )
    columns: dict[str, ColumnDriftSpec] = Field(default_factory=dict)

    def for_column(self, name: str) -> ColumnRule:
        """The rule ``name`` is judged by: its override, else the defaults."""
        own = self.columns.get(name) or ColumnDriftSpec()
        return ColumnRule(
            method=own.method or self.method,
            psi=own.psi if own.psi is not None else self.psi,
            ks_pvalue=own.ks_pvalue if own.ks_pvalue is not None else self.ks_pvalue,
            chi2_pvalue=own.chi2_pvalue if own.chi2_pvalue is not None else self.chi2_pvalue,
            min_rows=own.min_rows if own.min_rows is not None else self.min_rows,
            ignore=own.ignore,
        )


class ColumnRule(_Section):
    """A column's rule once its overrides are applied (``DriftSpec.for_column``)."""

    method: DriftMethodName
    psi: float
    ks_pvalue: float
    chi2_pvalue: float
    min_rows: int
    ignore: bool = False


class MonitorSpec(_Section):
    """The ``monitor:`` section (see the module docstring). ``rollback`` is the rule the
    deployment stage puts on the traffic policies it writes (``config.rollback``)."""

    window: str = Field(
        DEFAULT_WINDOW, description="Length of a drift window: 10m, 1h, 1d (whole seconds)."
    )
    drift: DriftSpec = Field(default_factory=DriftSpec)
    webhook: str | None = Field(None, description="An http(s) URL POSTed each drift alert.")
    rollback: RollbackSpec | None = None
    quality_window: float = Field(
        DEFAULT_QUALITY_WINDOW,
        description="Length of a live quality window: seconds, or a duration (15m, 1h, 1d). "
        "Windows are aligned to the epoch (UTC) and hold the predictions made in them.",
    )

    @field_validator("quality_window", mode="before")
    @classmethod
    def _quality_window(cls, value: Any) -> float:
        seconds = parse_duration(value)
        if seconds < 1 or seconds != int(seconds):
            raise ValueError("a quality window is a whole number of seconds, at least 1s")
        return seconds

    @field_validator("window", mode="before")
    @classmethod
    def _window(cls, value: Any) -> str:
        return every_text(value)

    @field_validator("webhook")
    @classmethod
    def _webhook(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith(("http://", "https://")):
            raise ValueError(f"{value!r} is not an http(s) URL (e.g. https://hooks.example/x)")
        return value

    @property
    def window_seconds(self) -> int:
        return int(parse_duration(self.window))


DEFAULT_MONITOR = MonitorSpec()
"""What a version whose spec has no ``monitor:`` section is monitored with."""
