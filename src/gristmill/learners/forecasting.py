"""ARIMA / SARIMAX forecasting with statsmodels; the label is the series, features exogenous.

Rows are taken in the order given (the split keeps time order). Features, if any, are
exogenous regressors: forecasting then needs their future values, so ``predict(frame)``
forecasts ``len(frame)`` steps after the training series, ``frame`` giving the future
exogenous values, indexed like ``frame`` (a test set following the training set lines up).

Stored form: statsmodels' results objects carry Cython Kalman filters and references to
the whole model, which skops can store only by trusting much of statsmodels and
``builtins.object``. A fitted model keeps instead the specification, the estimated
parameters and the training series; the results are rebuilt on first use with
``SARIMAX(...).filter(params)``, which runs the Kalman filter once and does not re-estimate,
so a loaded model forecasts exactly as the one that was saved.
"""

from __future__ import annotations

import warnings
from typing import Any, cast

import numpy as np
import pandas as pd
from statsmodels.tsa.statespace.sarimax import SARIMAX

from gristmill.errors import ConfigError, DataError
from gristmill.learners.base import Capability, FittedLearner, Learner, Task
from gristmill.learners.inputs import check_features, check_label, select_features
from gristmill.learners.learned import plain

TRENDS = ("n", "c", "t", "ct")


class SarimaxLearner(Learner):
    """statsmodels SARIMAX: ``order`` (p, d, q), ``seasonal_order`` (P, D, Q, s), ``trend``.

    ``trend`` left out (or ``None``) is the default of the statsmodels class the name stands
    for: none for ``sarimax`` (as ``SARIMAX``); see ``ArimaLearner`` for ``arima``. Give
    ``'n'`` for no trend, ``'c'`` for a constant, ``'t'``/``'ct'`` for a linear trend.
    """

    algorithm = "sarimax"
    task: Task = "forecasting"

    def __init__(
        self,
        order: tuple[int, int, int] | list[int] = (1, 0, 0),
        seasonal_order: tuple[int, int, int, int] | list[int] = (0, 0, 0, 0),
        trend: str | list[int] | None = None,
        enforce_stationarity: bool = True,
        enforce_invertibility: bool = True,
        maxiter: int = 50,
    ) -> None:
        self.order = order
        self.seasonal_order = seasonal_order
        self.trend = trend
        self.enforce_stationarity = enforce_stationarity
        self.enforce_invertibility = enforce_invertibility
        self.maxiter = maxiter

    def check_params(self) -> None:
        _check_ints(self.algorithm, "order", self.order, 3)
        _check_ints(self.algorithm, "seasonal_order", self.seasonal_order, 4)
        season = list(self.seasonal_order)[3]
        if season == 1:
            raise ConfigError(
                f"algorithm {self.algorithm!r} parameter 'seasonal_order': the season length "
                "(its 4th number) must be 0 (no season) or at least 2"
            )
        if not (
            self.trend is None
            or self.trend in TRENDS
            or (isinstance(self.trend, list) and set(self.trend) <= {0, 1})
        ):
            raise ConfigError(
                f"algorithm {self.algorithm!r} parameter 'trend' must be one of "
                f"{', '.join(TRENDS)}, a list of 0/1 (polynomial terms) or null; "
                f"got {self.trend!r}"
            )
        if not isinstance(self.maxiter, int) or self.maxiter < 1:
            raise ConfigError(
                f"algorithm {self.algorithm!r} parameter 'maxiter' must be a positive integer"
            )

    def default_trend(self) -> str | None:
        """The trend when none is given: statsmodels' ``SARIMAX`` has none."""
        return None

    def spec(self) -> dict[str, Any]:
        """The keyword arguments of the statsmodels model (the trend resolved)."""
        return {
            "order": tuple(self.order),
            "seasonal_order": tuple(self.seasonal_order),
            "trend": self.default_trend() if self.trend is None else self.trend,
            "enforce_stationarity": self.enforce_stationarity,
            "enforce_invertibility": self.enforce_invertibility,
        }

    def fit(self, frame: pd.DataFrame | None, y: pd.Series | None = None) -> FittedSarimax:
        self.check_params()
        check_label(y, self.task, self.algorithm)
        series = cast(pd.Series, y)
        features = frame if frame is not None else pd.DataFrame(index=series.index)
        if features.shape[1]:
            check_features(features, self.algorithm)
            _check_complete(features, self.algorithm)
        endog = series.to_numpy(dtype=float)
        exog = features.to_numpy(dtype=float) if features.shape[1] else None
        fitted = FittedSarimax(
            algorithm=self.algorithm,
            spec=self.spec(),
            params=np.empty(0),
            endog=endog,
            exog=exog,
            feature_names=[str(c) for c in features.columns],
            label=None if series.name is None else str(series.name),
            index=_index_clock(series.index),
        )
        model = fitted.model()
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            try:
                results = model.fit(disp=False, maxiter=self.maxiter)
            except (ValueError, np.linalg.LinAlgError) as exc:
                raise DataError(f"{self.algorithm!r} could not be fitted: {exc}") from exc
        fitted.params = np.asarray(results.params, dtype=float)
        fitted.adopt(results, [str(w.message) for w in caught])
        return fitted


class ArimaLearner(SarimaxLearner):
    """The same model under the name ``arima`` (a seasonal part stays optional).

    Its default trend is statsmodels ``ARIMA``'s: a constant (``'c'``) when nothing is
    differenced (``d`` and ``D`` are 0), none otherwise — without it a series whose mean is
    not 0 (sunspots) is pulled towards 0 and forecast badly. A given ``trend`` is kept.
    """

    algorithm = "arima"

    def default_trend(self) -> str | None:
        integrated = list(self.order)[1] > 0 or list(self.seasonal_order)[1] > 0
        return "n" if integrated else "c"


class FittedSarimax(FittedLearner):
    """A fitted SARIMAX: its specification, parameters and training series."""

    task: Task = "forecasting"

    def __init__(
        self,
        *,
        algorithm: str,
        spec: dict[str, Any],
        params: np.ndarray,
        endog: np.ndarray,
        exog: np.ndarray | None,
        feature_names: list[str],
        label: str | None,
        index: dict[str, Any],
    ) -> None:
        self.algorithm = algorithm
        self.spec = spec
        self.params = params
        self.endog = endog
        self.exog = exog
        self.feature_names = feature_names
        self.label = label
        self.index = index
        self.summary: dict[str, Any] = {}
        self._results: Any = None

    def __getstate__(self) -> dict[str, Any]:
        # The statsmodels results are rebuilt from params on load; they are never stored.
        state = dict(self.__dict__)
        state["_results"] = None
        return state

    @property
    def capabilities(self) -> frozenset[Capability]:
        return frozenset({"forecast"})

    def model(self) -> Any:
        """The statsmodels model over the training series (not fitted)."""
        endog = pd.Series(self.endog, name=self.label)
        exog = None if self.exog is None else pd.DataFrame(self.exog, columns=self.feature_names)
        return SARIMAX(endog, exog=exog, **self.spec)

    def adopt(self, results: Any, notes: list[str]) -> None:
        """Keep ``results`` (just estimated) and record the summary ``learned`` reports."""
        self._results = results
        converged = results.mle_retvals.get("converged") if results.mle_retvals else None
        self.summary = {
            "aic": plain(results.aic),
            "bic": plain(results.bic),
            "hqic": plain(results.hqic),
            "log_likelihood": plain(results.llf),
            "nobs": int(results.nobs),
            "converged": None if converged is None else bool(converged),
            "warnings": sorted(set(notes)),
        }

    def results(self) -> Any:
        if self._results is None:
            self._results = self.model().filter(self.params)
        return self._results

    def forecast(self, steps: int, frame: pd.DataFrame | None = None) -> pd.Series:
        if steps < 1:
            raise ConfigError(f"a forecast needs at least one step; got {steps}")
        exog = self._future_exog(steps, frame)
        values = np.asarray(self.results().forecast(steps, exog=exog), dtype=float)
        return pd.Series(values, index=_future_index(self.index, steps), name=self._name)

    def predict(self, frame: pd.DataFrame) -> pd.Series:
        if len(frame) == 0:
            return pd.Series([], index=frame.index, dtype=float, name=self._name)
        exog = self._future_exog(len(frame), frame)
        values = np.asarray(self.results().forecast(len(frame), exog=exog), dtype=float)
        return pd.Series(values, index=frame.index, name=self._name)

    def learned(self) -> dict[str, Any]:
        names = list(self.results().param_names) if self.params.size else []
        return {
            "params": dict(zip(names, plain(self.params), strict=True)),
            "order": list(self.spec["order"]),
            "seasonal_order": list(self.spec["seasonal_order"]),
            "trend": plain(self.spec["trend"]),
            "features": list(self.feature_names),
            **self.summary,
        }

    @property
    def _name(self) -> str:
        return self.label or "forecast"

    def _future_exog(self, steps: int, frame: pd.DataFrame | None) -> np.ndarray | None:
        if self.exog is None:
            return None
        if frame is None or len(frame) != steps:
            raise DataError(
                f"{self.algorithm!r} was fitted with exogenous features "
                f"({', '.join(self.feature_names)}); a forecast of {steps} step(s) needs "
                f"their future values: a frame of {steps} row(s)"
            )
        rows = select_features(frame, self.feature_names, self.algorithm)
        _check_complete(rows, self.algorithm)
        future: np.ndarray = rows.to_numpy(dtype=float)
        return future


def _check_ints(algorithm: str, name: str, value: Any, size: int) -> None:
    items = list(value) if isinstance(value, list | tuple) else None
    if (
        items is None
        or len(items) != size
        or not all(isinstance(i, int) and not isinstance(i, bool) and i >= 0 for i in items)
    ):
        raise ConfigError(
            f"algorithm {algorithm!r} parameter {name!r} must be {size} non-negative "
            f"integers; got {value!r}"
        )


def _check_complete(frame: pd.DataFrame, algorithm: str) -> None:
    for column in frame.columns:
        if frame[column].isna().any():
            raise DataError(
                f"exogenous feature {column!r} has missing values; {algorithm!r} needs "
                "them complete — impute them in the feature set",
                column=str(column),
            )


def _index_clock(index: pd.Index) -> dict[str, Any]:
    """How to continue ``index`` past its end: a date frequency, or positions."""
    if isinstance(index, pd.DatetimeIndex) and len(index) >= 3:
        freq = index.freqstr or pd.infer_freq(index)
        if freq:
            return {"kind": "dates", "last": index[-1].isoformat(), "freq": freq}
    return {"kind": "positions", "next": len(index)}


def _future_index(clock: dict[str, Any], steps: int) -> pd.Index:
    if clock["kind"] == "dates":
        offset = pd.tseries.frequencies.to_offset(clock["freq"])
        start = pd.Timestamp(clock["last"]) + offset
        return pd.date_range(start=start, periods=steps, freq=offset)
    return pd.RangeIndex(clock["next"], clock["next"] + steps)
