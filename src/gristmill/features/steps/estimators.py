"""Steps that fit one scikit-learn transformer on their named ``columns``.

The transformer sees only those columns (as a DataFrame, ``set_output(transform="pandas")``);
its output replaces them in place, and new columns (one-hot indicators) are appended. Every
other column passes through untouched, with its dtype. When the transformer fails on several
columns, each is tried alone so the error names the column at fault.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import clone

from gristmill.errors import ConfigError, DataError, GristmillError
from gristmill.features.steps.base import DATA_FAILURES, FeatureStep, merge_columns


class EstimatorStep(FeatureStep):
    """A step over ``columns`` backed by the scikit-learn transformer ``_estimator()`` makes."""

    columns: list[str]

    def _estimator(self) -> Any:
        """A new, unfitted scikit-learn transformer configured from the options."""
        raise NotImplementedError

    def _check_more(self) -> None:
        self._check_columns_option()
        estimator = self._estimator()
        # scikit-learn's own option check, for estimators that declare their constraints.
        validate = getattr(estimator, "_validate_params", None)
        if callable(validate) and hasattr(estimator, "_parameter_constraints"):
            try:
                validate()
            except DATA_FAILURES as exc:
                raise ConfigError(
                    f"step {self.display_name!r} has an invalid option: {exc}"
                ) from exc

    def _fit(self, frame: pd.DataFrame, y: pd.Series | None) -> None:
        columns = self._require(frame, self.columns)
        estimator = self._estimator()
        if hasattr(estimator, "set_output"):  # absent on transformers that name no outputs
            estimator.set_output(transform="pandas")
        try:
            estimator.fit(frame[columns], y)
        except GristmillError:
            raise
        except DATA_FAILURES as exc:
            blamed = _blame(columns, lambda c: clone(estimator).fit(frame[[c]], y))
            raise self._failure(blamed, exc) from exc
        self.estimator_ = estimator
        self.columns_ = columns
        # A row the transformer accepts: lets a failed transform find the column at fault.
        self.reference_ = frame[columns].iloc[:1].to_dict(orient="records")[0]

    def _transform(self, frame: pd.DataFrame) -> pd.DataFrame:
        columns = self._require(frame, self.columns_)
        produced = self._apply(frame[columns])
        produced.index = frame.index
        return merge_columns(frame, produced, columns, step=self.display_name)

    def _apply(self, data: pd.DataFrame) -> pd.DataFrame:
        try:
            return self._as_frame(self.estimator_.transform(data), data)
        except GristmillError:
            raise
        except DATA_FAILURES as exc:
            blamed = _blame(
                self.columns_, lambda c: self.estimator_.transform(self._probe(data, c))
            )
            raise self._failure(blamed, exc) from exc

    def _as_frame(self, result: Any, data: pd.DataFrame) -> pd.DataFrame:
        """A third-party transformer's array output as a frame named like its input."""
        if isinstance(result, pd.DataFrame):
            return result
        values = np.asarray(result.toarray() if hasattr(result, "toarray") else result)
        if values.ndim != 2 or values.shape[1] != data.shape[1]:
            raise DataError(
                f"step {self.display_name!r} returned {values.shape} for {data.shape[1]} columns "
                "without naming its outputs; give it get_feature_names_out"
            )
        return pd.DataFrame(values, columns=data.columns, index=data.index)

    def _probe(self, data: pd.DataFrame, column: str) -> pd.DataFrame:
        """``data`` with every column but ``column`` set to the fit-time reference row."""
        probe = {
            c: data[c] if c == column else pd.Series([self.reference_[c]] * len(data))
            for c in self.columns_
        }
        return pd.DataFrame(probe).set_axis(data.index)

    def _per_column(self, attribute: str) -> dict[str, Any]:
        """A fitted per-column array attribute of the transformer as ``{column: value}``."""
        return dict(zip(self.columns_, getattr(self.estimator_, attribute), strict=True))


def _blame(columns: Sequence[str], attempt: Callable[[str], object]) -> list[str]:
    """The first column ``attempt`` fails on alone, or all of them when none does."""
    if len(columns) > 1:
        for column in columns:
            try:
                attempt(column)
            except DATA_FAILURES:
                return [column]
    return list(columns)
