"""Select steps: keep the rows an expression accepts (``filter``), remove columns (``drop``).

A filter changes the row count. In a pipeline it runs where it stands, so the steps after it
are fitted on the rows it kept; the rows it saw and kept at fit are recorded. A row it
rejects at transform time is simply absent from the result.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from gristmill.errors import DataError
from gristmill.features.steps.base import FeatureStep
from gristmill.features.steps.expressions import Expression


class Filter(FeatureStep):
    """Keep the rows for which ``expr`` is true; a missing result counts as false."""

    step_name = "filter"
    kind = "select"

    def __init__(self, *, expr: str) -> None:
        self.expr = expr

    def _check_more(self) -> None:
        Expression.parse(self.expr, step=self.display_name, option="expr")

    def _fit(self, frame: pd.DataFrame, y: pd.Series | None) -> None:
        self.expression_ = Expression.parse(self.expr, step=self.display_name, option="expr")
        self.rows_in_ = len(frame)
        self.rows_out_ = int(self.mask(frame).sum())

    def _transform(self, frame: pd.DataFrame) -> pd.DataFrame:
        return frame[self.mask(frame)]

    def mask(self, frame: pd.DataFrame) -> pd.Series:
        """True for each row of ``frame`` the filter keeps."""
        values = self.expression_.evaluate(frame, step=self.display_name)
        if pd.api.types.is_bool_dtype(values.dtype):
            return values.fillna(False).astype(bool)
        raise DataError(
            f"step {self.display_name!r}: expression {self.expr!r} must be true or false for "
            f"each row; it gives {values.dtype} values"
        )

    def _learned(self) -> dict[str, Any]:
        return {"rows_in": self.rows_in_, "rows_out": self.rows_out_}


class Drop(FeatureStep):
    """Remove ``columns``; a column that is not there is an error unless ``missing: ignore``."""

    step_name = "drop"
    kind = "select"
    choices = {"missing": ("error", "ignore")}

    def __init__(self, *, columns: list[str], missing: str = "error") -> None:
        self.columns = columns
        self.missing = missing

    def _check_more(self) -> None:
        self._check_columns_option()

    def _fit(self, frame: pd.DataFrame, y: pd.Series | None) -> None:
        if self.missing == "error":
            self._require(frame, self.columns)

    def _transform(self, frame: pd.DataFrame) -> pd.DataFrame:
        if self.missing == "error":
            self._require(frame, self.columns)
        present = np.isin(frame.columns, self.columns)
        return frame.loc[:, ~present]

    def _learned(self) -> dict[str, Any]:
        return {"dropped": list(self.columns)}
