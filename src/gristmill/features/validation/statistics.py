"""Per-column statistics of a table (the role of TFX StatisticsGen), as JSON-able values.

Every column gets its row count, missing count and share, and its distinct count where it
is cheap and meaningful. Numeric columns add min, max, mean, standard deviation (sample,
``ddof=1``) and the quantiles ``QUANTILES``; string and boolean columns the most frequent
categories with their counts; temporal columns their earliest and latest value.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pyarrow as pa

from gristmill.features.validation.profiles import (
    TOP_CATEGORIES,
    ColumnProfile,
    Kind,
    json_value,
    profile_table,
    sorted_quantiles,
)

QUANTILES = (0.01, 0.05, 0.25, 0.5, 0.75, 0.95, 0.99)


def quantile_key(quantile: float) -> str:
    """The name of a quantile in statistics: ``0.05`` is ``p05``, ``0.5`` is ``p50``."""
    return f"p{round(quantile * 100):02d}"


@dataclass(frozen=True)
class ColumnStatistics:
    """One column's statistics; fields that do not apply to its kind are ``None`` or empty.

    ``count`` is the number of rows, ``missing`` those without a value (null, or NaN in a
    floating-point column), ``missing_share`` the fraction of the two. ``quantiles`` is keyed
    ``p01`` … ``p99``; ``top`` lists ``(category, rows)``, most frequent first.
    """

    name: str
    type: str
    kind: Kind
    count: int
    missing: int
    missing_share: float
    distinct: int | None = None
    min: Any = None
    max: Any = None
    mean: float | None = None
    std: float | None = None
    quantiles: dict[str, float | None] = field(default_factory=dict)
    top: list[tuple[Any, int]] = field(default_factory=list)

    @classmethod
    def from_profile(cls, profile: ColumnProfile) -> ColumnStatistics:
        common: dict[str, Any] = {
            "name": profile.name,
            "type": str(profile.type),
            "kind": profile.kind,
            "count": profile.rows,
            "missing": profile.missing,
            "missing_share": profile.missing_share,
            "distinct": profile.distinct,
            "top": profile.top[:TOP_CATEGORIES],
        }
        values = profile.values
        if values is None or values.size == 0:
            return cls(min=profile.minimum, max=profile.maximum, **common)
        quantiles = sorted_quantiles(values, QUANTILES)
        with np.errstate(invalid="ignore", over="ignore"):  # infinite values: NaN, then null
            mean = float(np.mean(values))
            std = float(np.std(values, ddof=1)) if values.size > 1 else None
        return cls(
            min=profile.minimum,
            max=profile.maximum,
            mean=mean,
            std=std,
            quantiles={
                quantile_key(q): json_value(float(v))
                for q, v in zip(QUANTILES, quantiles, strict=True)
            },
            **common,
        )

    def to_dict(self) -> dict[str, Any]:
        """A JSON-able dict; ``top`` becomes a list of ``{"value", "count"}``."""
        return {
            "name": self.name,
            "type": self.type,
            "kind": self.kind,
            "count": self.count,
            "missing": self.missing,
            "missing_share": self.missing_share,
            "distinct": self.distinct,
            "min": json_value(self.min),
            "max": json_value(self.max),
            "mean": json_value(self.mean),
            "std": json_value(self.std),
            "quantiles": dict(self.quantiles),
            "top": [{"value": json_value(v), "count": n} for v, n in self.top],
        }


@dataclass(frozen=True)
class TableStatistics:
    """The statistics of every column of one table, in table order."""

    row_count: int
    columns: list[ColumnStatistics]

    @classmethod
    def from_profiles(cls, row_count: int, profiles: dict[str, ColumnProfile]) -> TableStatistics:
        return cls(row_count, [ColumnStatistics.from_profile(p) for p in profiles.values()])

    def column(self, name: str) -> ColumnStatistics:
        """The statistics of column ``name``; ``KeyError`` naming the known columns if absent."""
        for statistics in self.columns:
            if statistics.name == name:
                return statistics
        known = ", ".join(s.name for s in self.columns)
        raise KeyError(f"no column {name!r} in these statistics; known: {known}")

    def to_dict(self) -> dict[str, Any]:
        return {"row_count": self.row_count, "columns": [c.to_dict() for c in self.columns]}


def compute_statistics(table: pa.Table) -> TableStatistics:
    """The statistics of every column of ``table``."""
    return TableStatistics.from_profiles(table.num_rows, profile_table(table))
