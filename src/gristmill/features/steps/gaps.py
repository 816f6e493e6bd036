"""``fill_gaps``: missing values of a series filled from its own rows, after adding, with
``freq``, a row for each time the series skips (see ``steps.series`` for the family)."""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import pandas as pd

from gristmill.errors import ConfigError, DataError
from gristmill.features.steps.base import merge_columns
from gristmill.features.steps.series import SeriesStep

FILL_METHODS = ("interpolate", "ffill", "bfill")
LOOKS_AHEAD = frozenset({"interpolate", "bfill"})
"""Fill methods that read later values (a lag of a label filled so would read its row)."""


class FillGaps(SeriesStep):
    """Missing values of ``columns`` filled from their series; with ``freq``, skipped times
    added as rows first (see the module docstring)."""

    step_name = "fill_gaps"
    kind = "transform"
    choices = {"method": FILL_METHODS}

    def __init__(
        self,
        *,
        columns: list[str],
        method: str = "interpolate",
        time: str | None = None,
        by: list[str] | None = None,
        freq: str | None = None,
        limit: int | None = None,
    ) -> None:
        self.columns = columns
        self.method = method
        self.time = time
        self.by = by
        self.freq = freq
        self.limit = limit

    def adds_rows(self) -> bool:
        return self.freq is not None

    def _check_more(self) -> None:
        super()._check_more()
        if self.limit is not None and (
            not isinstance(self.limit, int) or isinstance(self.limit, bool) or self.limit < 1
        ):
            raise ConfigError(
                f"step {self.display_name!r} option 'limit' must be a whole number of at least 1 "
                f"(the most missing values in a row to fill); got {self.limit!r}"
            )
        if self.freq is None:
            return
        if self.time is None:
            raise ConfigError(
                f"step {self.display_name!r} option 'freq' needs 'time': the column whose "
                "times the series is made regular on"
            )
        try:
            pd.tseries.frequencies.to_offset(self.freq)
        except (ValueError, TypeError) as exc:
            raise ConfigError(
                f"step {self.display_name!r} option 'freq' {self.freq!r} is not a frequency; "
                "write e.g. D (days), W-SUN (weeks ending Sunday), MS (month starts), h (hours)"
            ) from exc

    def _check_data(self, frame: pd.DataFrame) -> None:
        if self.method == "interpolate":
            for column in self.columns:
                self._numbers(
                    frame, column, "with method interpolate takes numbers (ffill and bfill any)"
                )
        if self.freq is not None:
            self._times(frame)

    def _fit(self, frame: pd.DataFrame, y: pd.Series | None) -> None:
        super()._fit(frame, y)
        self.rows_added_ = len(self._regular(frame)) - len(frame) if self.freq else 0

    def _transform(self, frame: pd.DataFrame) -> pd.DataFrame:
        self._require(frame, self.read_columns)
        if self.freq is not None:
            frame = self._regular(frame)
        ordered = self._ordered(frame)

        def filled(rows: pd.DataFrame) -> pd.DataFrame:
            return pd.DataFrame(
                {column: self._fill(rows, column) for column in self.columns}, index=rows.index
            )

        produced = self._guard(self.columns, lambda: self._per_series(ordered, filled))
        return merge_columns(
            frame, produced.reindex(frame.index), self.columns, step=self.display_name
        )

    def _learned(self) -> dict[str, Any]:
        return {"rows_added": self.rows_added_} if self.freq else {}

    def _fill(self, rows: pd.DataFrame, column: str) -> pd.Series:
        values = rows[column]
        if self.method == "ffill":
            return values.ffill(limit=self.limit)
        if self.method == "bfill":
            return values.bfill(limit=self.limit)
        numbers = values.astype(np.float64)
        if self.time is None:
            index: pd.Index = pd.RangeIndex(len(rows))
            how = "linear"
        elif pd.api.types.is_numeric_dtype(rows[self.time]):
            index, how = pd.Index(rows[self.time].astype(np.float64)), "index"
        else:
            index, how = pd.DatetimeIndex(self._times(rows)), "time"
        series = pd.Series(numbers.to_numpy(), index=index)
        done = series.interpolate(method=how, limit=self.limit, limit_area="inside")
        return pd.Series(done.to_numpy(), index=rows.index)

    def _times(self, frame: pd.DataFrame) -> pd.Series:
        column = str(self.time)
        values = frame[column]
        if pd.api.types.is_datetime64_any_dtype(values):
            return values
        kinds = {type(v).__name__ for v in values.dropna().head(100)}
        if kinds <= {"date", "datetime", "Timestamp"}:
            return pd.to_datetime(values)
        if kinds <= {"str"}:  # dates sent as text (JSON): ISO 8601
            try:
                return pd.to_datetime(values, format="ISO8601")
            except (ValueError, TypeError):
                pass
        raise DataError(
            f"step {self.display_name!r} needs dates or times in column {column!r} (for 'freq' "
            f"and to interpolate by time); it holds {values.dtype} values — declare it as date "
            "or timestamp in the source's columns",
            column=column,
        )

    def _regular(self, frame: pd.DataFrame) -> pd.DataFrame:
        """``frame`` with a row added for each time its series skip, in time order."""
        times = self._times(frame)
        offset = pd.tseries.frequencies.to_offset(self.freq)
        groups = (
            frame.groupby(self.by, sort=False, dropna=False).indices
            if self.by
            else {(): np.arange(len(frame))}
        )
        added: list[dict[str, Any]] = []
        for key, positions in groups.items():
            known = pd.DatetimeIndex(times.iloc[positions])
            self._check_grid(known, offset)
            grid = pd.date_range(known.min(), known.max(), freq=offset)
            keys = key if isinstance(key, tuple) else (key,)
            values = dict(zip(self.by or [], keys, strict=True))
            added += [{**values, str(self.time): t} for t in grid.difference(known)]
        if not added:
            return frame
        lowest = min(0, int(frame.index.min()) if len(frame) else 0)
        new = pd.DataFrame(added, index=pd.RangeIndex(lowest - 1, lowest - 1 - len(added), -1))
        new[str(self.time)] = _like(pd.DatetimeIndex(new[str(self.time)]), frame[str(self.time)])
        joined = pd.concat([frame, new.reindex(columns=frame.columns)])
        return joined.sort_values(self._keys(), kind="stable")

    def _check_grid(self, known: pd.DatetimeIndex, offset: Any) -> None:
        if known.has_duplicates:
            twice = known[known.duplicated()][0]
            raise DataError(
                f"step {self.display_name!r}: two rows share time {twice} in column "
                f"{self.time!r}{' within one by group' if self.by else ''}; 'freq' needs one "
                "row per time (aggregate them first, or group them with 'by')",
                column=self.time,
            )
        grid = pd.date_range(known.min(), known.max(), freq=offset)
        off = known.difference(grid)
        if len(off):
            guess = _looks_like(known)
            hint = f"; the times look like freq {guess!r}" if guess else ""
            raise DataError(
                f"step {self.display_name!r}: time {off[0]} of column {self.time!r} is not on "
                f"freq {self.freq!r}{hint}",
                column=self.time,
            )


def _looks_like(known: pd.DatetimeIndex) -> str | None:
    """The frequency the first times of a series look like (``W-SAT``), if pandas can tell."""
    if len(known) < 3:
        return None
    with warnings.catch_warnings():  # pandas 3 announces an offset instead of a string
        warnings.simplefilter("ignore", DeprecationWarning)
        guess = pd.infer_freq(known.sort_values()[:50])
    return None if guess is None else str(getattr(guess, "freqstr", guess))


def _like(times: pd.DatetimeIndex, original: pd.Series) -> Any:
    """``times`` written as ``original``'s values are: its datetime dtype, or dates."""
    if pd.api.types.is_datetime64_any_dtype(original):
        tz = getattr(original.dtype, "tz", None)
        stamps = times.tz_localize(tz) if tz is not None and times.tz is None else times
        return pd.Series(stamps, dtype=original.dtype).to_numpy()
    sample = original.dropna().head(1)
    kind = type(sample.iloc[0]).__name__ if len(sample) else ""
    if kind == "date":
        return np.array([t.date() for t in times], dtype=object)
    if kind == "str":  # text in, text out: a date, or a full ISO 8601 time
        dates = len(str(sample.iloc[0])) == 10
        return np.array([t.strftime("%Y-%m-%d") if dates else t.isoformat() for t in times])
    return np.array(list(times), dtype=object)
