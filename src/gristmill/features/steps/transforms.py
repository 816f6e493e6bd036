"""Transform steps: imputation, scaling, encoding, binning and power transforms.

Each is a thin configuration of one scikit-learn transformer applied to named columns; the
learned state (means, categories, bin edges, lambdas) is reported by ``describe()``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
from sklearn.impute import SimpleImputer
from sklearn.preprocessing import (
    FunctionTransformer,
    KBinsDiscretizer,
    MinMaxScaler,
    OneHotEncoder,
    OrdinalEncoder,
    PowerTransformer,
    RobustScaler,
    StandardScaler,
)

from gristmill.errors import ConfigError
from gristmill.features.steps.estimators import EstimatorStep


class Impute(EstimatorStep):
    """Fill missing values with the column's mean, median, most frequent value or a constant."""

    step_name = "impute"
    choices = {"strategy": ("mean", "median", "most_frequent", "constant")}

    def __init__(
        self, *, columns: list[str], strategy: str = "mean", fill_value: Any = None
    ) -> None:
        self.columns = columns
        self.strategy = strategy
        self.fill_value = fill_value

    def _estimator(self) -> Any:
        return SimpleImputer(
            strategy=self.strategy, fill_value=self.fill_value, keep_empty_features=True
        )

    def _learned(self) -> dict[str, Any]:
        return {"fill": self._per_column("statistics_")}

    def _apply(self, data: pd.DataFrame) -> pd.DataFrame:
        """Text columns filled with their learned text by pandas, the rest by scikit-learn.

        For text columns scikit-learn turns each value into a Python object and pandas infers
        the text type back (two copies of every value); ``fillna`` gives the same values in
        the same ``str`` dtype at a fraction of the cost. Any other case (numbers, a fill
        that is not text, e.g. 0 for a column that was empty at fit) goes to scikit-learn.
        """
        fills = self._per_column("statistics_")
        if not all(
            isinstance(data[c].dtype, pd.StringDtype) and isinstance(fills[c], str)
            for c in self.columns_
        ):
            return super()._apply(data)
        return data.fillna({c: fills[c] for c in self.columns_})


class Standardize(EstimatorStep):
    """Centre on the mean and divide by the standard deviation."""

    step_name = "standardize"

    def __init__(
        self, *, columns: list[str], with_mean: bool = True, with_std: bool = True
    ) -> None:
        self.columns = columns
        self.with_mean = with_mean
        self.with_std = with_std

    def _estimator(self) -> Any:
        return StandardScaler(with_mean=self.with_mean, with_std=self.with_std)

    def _learned(self) -> dict[str, Any]:
        learned = {"mean": self._per_column("mean_")}
        if self.estimator_.scale_ is not None:
            learned["scale"] = self._per_column("scale_")
        return learned


class Scale(EstimatorStep):
    """Min-max scaling into ``feature_range``, or robust scaling by the median and IQR."""

    step_name = "scale"
    choices = {"method": ("minmax", "robust")}

    def __init__(
        self,
        *,
        columns: list[str],
        method: str = "minmax",
        feature_range: Sequence[float] = (0.0, 1.0),
        quantile_range: Sequence[float] = (25.0, 75.0),
        clip: bool = False,
    ) -> None:
        self.columns = columns
        self.method = method
        self.feature_range = feature_range
        self.quantile_range = quantile_range
        self.clip = clip

    def _estimator(self) -> Any:
        if self.method == "robust":
            return RobustScaler(quantile_range=tuple(self.quantile_range))
        return MinMaxScaler(feature_range=tuple(self.feature_range), clip=self.clip)

    def _learned(self) -> dict[str, Any]:
        if self.method == "robust":
            return {"center": self._per_column("center_"), "scale": self._per_column("scale_")}
        return {"min": self._per_column("data_min_"), "max": self._per_column("data_max_")}


class OneHot(EstimatorStep):
    """One indicator column per category (``<column>_<category>``); unknowns: all zeros."""

    step_name = "one_hot"
    choices = {
        "handle_unknown": ("ignore", "infrequent_if_exist", "error"),
        "drop": (None, "first", "if_binary"),
    }

    def __init__(
        self,
        *,
        columns: list[str],
        handle_unknown: str = "ignore",
        drop: str | None = None,
        min_frequency: float | None = None,
        max_categories: int | None = None,
    ) -> None:
        self.columns = columns
        self.handle_unknown = handle_unknown
        self.drop = drop
        self.min_frequency = min_frequency
        self.max_categories = max_categories

    def _estimator(self) -> Any:
        return OneHotEncoder(
            handle_unknown=self.handle_unknown,
            drop=self.drop,
            min_frequency=self.min_frequency,
            max_categories=self.max_categories,
            sparse_output=False,
            dtype=np.float64,
        )

    def _learned(self) -> dict[str, Any]:
        learned = {"categories": self._per_column("categories_")}
        infrequent = getattr(self.estimator_, "infrequent_categories_", None)
        if infrequent is not None:
            learned["infrequent"] = dict(zip(self.columns_, infrequent, strict=True))
        return learned


class Ordinal(EstimatorStep):
    """Each category as its position (0, 1, …) in ``categories`` or in sorted order."""

    step_name = "ordinal"
    choices = {"handle_unknown": ("use_encoded_value", "error")}

    def __init__(
        self,
        *,
        columns: list[str],
        categories: Mapping[str, list[Any]] | None = None,
        handle_unknown: str = "use_encoded_value",
        unknown_value: float = -1,
    ) -> None:
        self.columns = columns
        self.categories = categories
        self.handle_unknown = handle_unknown
        self.unknown_value = unknown_value

    def _check_more(self) -> None:
        if self.categories is not None:
            missing = [c for c in self.columns or [] if c not in self.categories]
            if missing:
                raise ConfigError(
                    f"step {self.display_name!r} option 'categories' has no list for column "
                    f"{missing[0]!r}"
                )
        super()._check_more()

    def _estimator(self) -> Any:
        categories = (
            "auto" if self.categories is None else [list(self.categories[c]) for c in self.columns]
        )
        unknown = self.unknown_value if self.handle_unknown == "use_encoded_value" else None
        return OrdinalEncoder(
            categories=categories, handle_unknown=self.handle_unknown, unknown_value=unknown
        )

    def _learned(self) -> dict[str, Any]:
        return {"categories": self._per_column("categories_")}


class Bucketize(EstimatorStep):
    """The bucket number (0, 1, …) of each value: ``bins`` by quantile or width, or ``edges``.

    ``edges`` are inner cut points, one list for every column or a list per column: with
    ``[18, 65]`` a value below 18 is bucket 0, from 18 up to 65 bucket 1, 65 and up bucket 2.
    A missing value stays missing with ``edges``; learned bins need it imputed first.
    """

    step_name = "bucketize"
    choices = {"strategy": ("quantile", "uniform", "kmeans")}

    def __init__(
        self,
        *,
        columns: list[str],
        bins: int = 5,
        strategy: str = "quantile",
        edges: Sequence[float] | Mapping[str, Sequence[float]] | None = None,
    ) -> None:
        self.columns = columns
        self.bins = bins
        self.strategy = strategy
        self.edges = edges

    def _check_more(self) -> None:
        super()._check_more()
        if self.edges is not None:
            for column, cuts in self._edges().items():
                if list(cuts) != sorted(set(cuts)) or not cuts:
                    raise ConfigError(
                        f"step {self.display_name!r} option 'edges' for column {column!r} must be "
                        f"increasing numbers; got {list(cuts)!r}"
                    )

    def _edges(self) -> dict[str, list[float]]:
        edges = self.edges
        if not isinstance(edges, Mapping):
            edges = dict.fromkeys(self.columns, edges or ())
        missing = [c for c in self.columns if c not in edges]
        if missing:
            raise ConfigError(
                f"step {self.display_name!r} option 'edges' has no list for column {missing[0]!r}"
            )
        try:
            return {c: [float(e) for e in edges[c]] for c in self.columns}
        except (TypeError, ValueError) as exc:
            raise ConfigError(
                f"step {self.display_name!r} option 'edges' must hold numbers: {exc}"
            ) from exc

    def _estimator(self) -> Any:
        if self.edges is not None:
            return FunctionTransformer(
                bucket_by_edges, kw_args={"edges": self._edges()}, feature_names_out="one-to-one"
            )
        return KBinsDiscretizer(
            n_bins=self.bins, encode="ordinal", strategy=self.strategy, random_state=0
        )

    def _learned(self) -> dict[str, Any]:
        if self.edges is not None:
            return {"edges": self._edges()}
        inner = {c: list(e[1:-1]) for c, e in self._per_column("bin_edges_").items()}
        return {"edges": inner}


class Log(EstimatorStep):
    """``log(1 + x)``; a value of -1 or less is a ``DataError`` (its log is undefined)."""

    step_name = "log"

    def __init__(self, *, columns: list[str]) -> None:
        self.columns = columns

    def _estimator(self) -> Any:
        return FunctionTransformer(log1p, inverse_func=np.expm1, feature_names_out="one-to-one")


class Power(EstimatorStep):
    """A Yeo-Johnson or Box-Cox power transform towards normality (then standardized)."""

    step_name = "power"
    choices = {"method": ("yeo-johnson", "box-cox")}

    def __init__(
        self, *, columns: list[str], method: str = "yeo-johnson", standardize: bool = True
    ) -> None:
        self.columns = columns
        self.method = method
        self.standardize = standardize

    def _estimator(self) -> Any:
        return PowerTransformer(method=self.method, standardize=self.standardize)

    def _learned(self) -> dict[str, Any]:
        return {"lambdas": self._per_column("lambdas_")}


def bucket_by_edges(data: pd.DataFrame, edges: Mapping[str, list[float]]) -> pd.DataFrame:
    """The bucket of each value given inner cut points per column; missing stays missing."""
    result = {}
    for column in data.columns:
        values = pd.to_numeric(data[column], errors="raise").to_numpy(dtype=np.float64)
        buckets = np.searchsorted(np.asarray(edges[column]), values, side="right")
        result[column] = np.where(np.isnan(values), np.nan, buckets.astype(np.float64))
    return pd.DataFrame(result, index=data.index)


def log1p(data: pd.DataFrame) -> pd.DataFrame:
    """``log(1 + x)`` of every column; ``ValueError`` naming a column holding -1 or less."""
    values = data.astype(np.float64)
    for column in values.columns:
        low = values[column].min()
        if low <= -1:
            raise ValueError(f"log needs values above -1; column {column!r} holds {low}")
    return np.log1p(values)
