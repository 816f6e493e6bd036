"""Series steps: a row's value read from the rows around it in time — gaps filled, lags,
rolling windows.

Each takes its ``columns``, ordered by ``time`` (a column; without it, the rows' own
order) within each group of ``by`` (columns naming one series each: a shop, a sensor).
They compute from the rows they are given, and only those: a batch at serving, or one
subset of a split at training (``features.fitting`` gives them each subset on its own), so
nothing crosses a split in either direction (ADR 27).

* ``fill_gaps`` (in ``steps.gaps``) fills missing values: ``interpolate`` (between the
  known values around a gap, weighted by time when ``time`` holds times; a gap at either
  end stays missing), ``ffill`` (the last known value), ``bfill`` (the next one);
  ``limit`` caps how many missing values in a row are filled. With ``freq`` (``W-SAT``,
  ``D``, ``h``, ``MS`` …) it first adds a row for each time the series skips, so it is
  regular: the added rows carry their ``time`` and ``by`` values, the filled ``columns``,
  and nothing else.
* ``lag`` adds ``<column>_lag<p>``: the value ``p`` rows earlier, for each of ``periods``.
* ``rolling`` adds ``<column>_rolling<window>_<stat>``: a statistic of the ``window`` rows
  *before* each row (the row itself excluded), once ``min_periods`` of them are known.

The first rows of each series have no lag or window value: they are missing, and counted
(``FittedFeaturePipeline.transform(gaps=…)``; preparation records and reports the counts).

So a lag or a window never reads its own row nor a later one, and may read the label
(``features.pipeline`` hands the label to the series steps that name it, and to no other
step).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, ClassVar

import numpy as np
import pandas as pd

from gristmill.errors import ConfigError, DataError
from gristmill.features.steps.base import FeatureStep, merge_columns

ROLLING_STATS = ("mean", "std", "min", "max", "sum", "median", "var")


class SeriesStep(FeatureStep):
    """A step whose value for a row depends on other rows of its series (see the module)."""

    reads_rows: ClassVar[bool] = True
    columns: list[str]
    time: str | None
    by: list[str] | None

    @property
    def read_columns(self) -> list[str]:
        """Every column the step reads: its ``columns``, ``time`` and ``by``."""
        return [*self.columns, *self._keys()]

    def reads_label(self, label: str | None) -> bool:
        return label is not None and label in (self.columns or [])

    def _check_more(self) -> None:
        self._check_columns_option()
        if self.time is not None and not isinstance(self.time, str):
            raise ConfigError(
                f"step {self.display_name!r} option 'time' must be a column name; got {self.time!r}"
            )
        if self.by is not None:
            self._check_columns_option("by")
        clash = sorted(set(self.columns) & set(self._keys()))
        if clash:
            raise ConfigError(
                f"step {self.display_name!r}: column {clash[0]!r} is in 'columns' and orders or "
                "groups the rows too ('time', 'by'); name it once"
            )

    def _keys(self) -> list[str]:
        return [*(self.by or []), *([self.time] if self.time else [])]

    def _fit(self, frame: pd.DataFrame, y: pd.Series | None) -> None:
        self._require(frame, self.read_columns)
        self._check_data(frame)

    def _check_data(self, frame: pd.DataFrame) -> None:
        """``DataError`` for data the step cannot work on (checked at fit)."""

    def _ordered(self, frame: pd.DataFrame) -> pd.DataFrame:
        """``frame`` in time order within each group (stable: ties keep their order)."""
        keys = self._keys()
        if self.time is not None and frame[self.time].isna().any():
            raise DataError(
                f"step {self.display_name!r}: column {self.time!r} orders the rows but some "
                "have no value; fill or filter them first",
                column=self.time,
            )
        if not keys:
            return frame
        return frame.sort_values(keys, kind="stable", na_position="last")

    def _per_series(
        self, ordered: pd.DataFrame, compute: Callable[[pd.DataFrame], pd.DataFrame]
    ) -> pd.DataFrame:
        """``compute`` applied to each series (a ``by`` group) of ``ordered``, joined again."""
        if not self.by:
            return compute(ordered)
        groups = ordered.groupby(self.by, sort=False, dropna=False).indices
        parts = [compute(ordered.iloc[positions]) for positions in groups.values()]
        return pd.concat(parts) if parts else compute(ordered)

    def _numbers(self, frame: pd.DataFrame, column: str, what: str) -> None:
        values = frame[column]
        if not (pd.api.types.is_numeric_dtype(values) or values.isna().all()):
            raise DataError(
                f"step {self.display_name!r} {what}; column {column!r} holds {values.dtype} values",
                column=column,
            )


class Lag(SeriesStep):
    """``<column>_lag<p>``: the value ``p`` rows earlier in the series, for each period."""

    step_name = "lag"
    kind = "extract"

    def __init__(
        self,
        *,
        columns: list[str],
        periods: Sequence[int] = (1,),
        time: str | None = None,
        by: list[str] | None = None,
    ) -> None:
        self.columns = columns
        self.periods = periods
        self.time = time
        self.by = by

    def _check_more(self) -> None:
        super()._check_more()
        periods = list(self.periods) if isinstance(self.periods, list | tuple) else None
        if not periods or not all(
            isinstance(p, int) and not isinstance(p, bool) and p >= 1 for p in periods
        ):
            raise ConfigError(
                f"step {self.display_name!r} option 'periods' must list whole numbers of rows "
                f"of at least 1 (a lag reads the past only); got {self.periods!r}"
            )

    @property
    def produced(self) -> list[str]:
        """The columns the step adds (missing for each series' first ``p`` rows)."""
        return [f"{column}_lag{period}" for column in self.columns for period in self.periods]

    def _transform(self, frame: pd.DataFrame) -> pd.DataFrame:
        self._require(frame, self.read_columns)
        ordered = self._ordered(frame)
        source: Any = ordered[self.columns]
        if self.by:
            source = source.groupby([ordered[b] for b in self.by], sort=False, dropna=False)
        produced = {
            f"{column}_lag{period}": source[column].shift(period)
            for column in self.columns
            for period in self.periods
        }
        lags = pd.DataFrame(produced, index=ordered.index).reindex(frame.index)
        return merge_columns(frame, lags, [], step=self.display_name)


class Rolling(SeriesStep):
    """``<column>_rolling<window>_<stat>``: each statistic of the ``window`` rows before."""

    step_name = "rolling"
    kind = "extract"

    def __init__(
        self,
        *,
        columns: list[str],
        window: int = 7,
        stats: Sequence[str] = ("mean",),
        min_periods: int | None = None,
        time: str | None = None,
        by: list[str] | None = None,
    ) -> None:
        self.columns = columns
        self.window = window
        self.stats = stats
        self.min_periods = min_periods
        self.time = time
        self.by = by

    def _check_more(self) -> None:
        super()._check_more()
        if not isinstance(self.window, int) or isinstance(self.window, bool) or self.window < 1:
            raise ConfigError(
                f"step {self.display_name!r} option 'window' must be a whole number of rows "
                f"(at least 1); got {self.window!r}"
            )
        stats = list(self.stats) if isinstance(self.stats, list | tuple) else [self.stats]
        unknown = [s for s in stats if s not in ROLLING_STATS] or (not stats and ["(none)"])
        if unknown:
            raise ConfigError(
                f"step {self.display_name!r} option 'stats' has {unknown[0]!r}; choose from "
                f"{', '.join(ROLLING_STATS)}"
            )
        least = self.min_periods
        if least is not None and (
            not isinstance(least, int) or isinstance(least, bool) or not 1 <= least <= self.window
        ):
            raise ConfigError(
                f"step {self.display_name!r} option 'min_periods' must be a whole number from "
                f"1 to the window ({self.window}); got {least!r}"
            )

    def _check_data(self, frame: pd.DataFrame) -> None:
        for column in self.columns:
            self._numbers(frame, column, "takes numbers")

    @property
    def produced(self) -> list[str]:
        """The columns the step adds (missing until ``min_periods`` earlier rows are known)."""
        return [
            f"{column}_rolling{self.window}_{stat}"
            for column in self.columns
            for stat in self.stats
        ]

    def _transform(self, frame: pd.DataFrame) -> pd.DataFrame:
        self._require(frame, self.read_columns)
        ordered = self._ordered(frame)
        least = self.window if self.min_periods is None else self.min_periods

        def windows(rows: pd.DataFrame) -> pd.DataFrame:
            out = {}
            for column in self.columns:
                past = rows[column].astype(np.float64).shift(1)  # the row itself is excluded
                rolled = past.rolling(self.window, min_periods=least)
                for stat in self.stats:
                    out[f"{column}_rolling{self.window}_{stat}"] = getattr(rolled, stat)()
            return pd.DataFrame(out, index=rows.index)

        produced = self._guard(self.columns, lambda: self._per_series(ordered, windows))
        return merge_columns(frame, produced.reindex(frame.index), [], step=self.display_name)
