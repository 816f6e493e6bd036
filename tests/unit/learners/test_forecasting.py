"""ARIMA / SARIMAX on statsmodels data: the same fit as statsmodels, forecasts, exogenous."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import skops.io as sio
from statsmodels.tsa.arima.model import ARIMA
from statsmodels.tsa.statespace.sarimax import SARIMAX

from gristmill.errors import ConfigError, DataError
from gristmill.learners import make_learner
from gristmill.learners import serialization as ser
from gristmill.learners.forecasting import FittedSarimax


def _fit(params: dict[str, object], frame: pd.DataFrame | None, y: pd.Series) -> FittedSarimax:
    model = make_learner("arima", params).fit(frame, y)
    assert isinstance(model, FittedSarimax)
    return model


def test_arima_matches_statsmodels(sunspots: pd.Series) -> None:
    model = _fit({"order": [2, 0, 1], "trend": "c"}, None, sunspots)
    reference = SARIMAX(sunspots.to_numpy(), order=(2, 0, 1), trend="c").fit(disp=False)
    learned = model.learned()
    assert list(learned["params"]) == ["intercept", "ar.L1", "ar.L2", "ma.L1", "sigma2"]
    np.testing.assert_allclose(list(learned["params"].values()), reference.params, rtol=1e-4)
    assert learned["aic"] == pytest.approx(reference.aic, rel=1e-6)
    assert learned["nobs"] == len(sunspots)
    assert learned["converged"] is True
    np.testing.assert_allclose(model.forecast(5).to_numpy(), reference.forecast(5), rtol=1e-4)


def test_arima_has_a_constant_by_default_as_statsmodels_arima(sunspots: pd.Series) -> None:
    train, test = sunspots.iloc[:-30], sunspots.iloc[-30:]
    default = _fit({"order": [2, 0, 0]}, None, train)
    assert default.learned()["trend"] == "c"
    assert "intercept" in default.learned()["params"]
    reference = ARIMA(train.to_numpy(), order=(2, 0, 0)).fit()
    np.testing.assert_allclose(default.forecast(5).to_numpy(), reference.forecast(5), rtol=1e-4)

    def error(model: FittedSarimax) -> float:
        return float(np.abs(model.forecast(30).to_numpy() - test.to_numpy()).mean())

    without = _fit({"order": [2, 0, 0], "trend": "n"}, None, train)  # a given trend is kept
    assert without.learned()["trend"] == "n"
    assert error(default) < 0.8 * error(without)
    # as statsmodels: no constant once differenced; SARIMAX's own default stays none
    assert make_learner("arima", {"order": [1, 1, 0]}).get_params()["trend"] is None
    assert _fit({"order": [1, 1, 0]}, None, train).learned()["trend"] == "n"
    assert _fit({"seasonal_order": [0, 1, 0, 11]}, None, train).learned()["trend"] == "n"
    sarimax = make_learner("sarimax", {"order": [2, 0, 0]}).fit(None, train)
    assert isinstance(sarimax, FittedSarimax) and sarimax.learned()["trend"] is None


def test_forecast_continues_a_date_index(sunspots: pd.Series) -> None:
    forecast = _fit({"order": [1, 0, 0]}, None, sunspots).forecast(3)
    assert list(forecast.index) == list(pd.date_range("2009-01-01", periods=3, freq="YS"))
    assert forecast.name == "sunactivity"
    positions = _fit({"order": [1, 0, 0]}, None, sunspots.reset_index(drop=True)).forecast(2)
    assert list(positions.index) == [len(sunspots), len(sunspots) + 1]
    with pytest.raises(ConfigError, match="at least one step"):
        _fit({"order": [1, 0, 0]}, None, sunspots).forecast(0)


def test_exogenous_features_forecast_aligned_to_the_test_rows(macrodata: pd.DataFrame) -> None:
    train, test = macrodata.iloc[:180], macrodata.iloc[180:190]
    model = make_learner("sarimax", {"order": [1, 1, 0]}).fit(train[["realcons"]], train["realgdp"])
    reference = SARIMAX(
        train["realgdp"].to_numpy(), exog=train[["realcons"]].to_numpy(), order=(1, 1, 0)
    ).fit(disp=False)
    predicted = model.predict(test[["realcons", "realinv"]])
    assert predicted.index.equals(test.index)
    np.testing.assert_allclose(
        predicted.to_numpy(), reference.forecast(10, exog=test[["realcons"]].to_numpy()), rtol=1e-4
    )
    assert "realcons" in model.learned()["params"]
    with pytest.raises(DataError, match=r"needs their future values: a frame of 4 row"):
        model.forecast(4)
    with pytest.raises(DataError, match="missing here: realcons"):
        model.predict(test[["realinv"]])


def test_loaded_model_forecasts_exactly_without_refitting(sunspots: pd.Series) -> None:
    model = _fit({"order": [2, 0, 0], "seasonal_order": [1, 0, 0, 11]}, None, sunspots)
    data = ser.dumps(model)
    # No statsmodels object is stored: only gristmill's own type needs trust.
    assert sio.get_untrusted_types(data=data) == ["gristmill.learners.forecasting.FittedSarimax"]
    loaded = ser.loads(data)
    assert isinstance(loaded, FittedSarimax)
    assert loaded._results is None
    pd.testing.assert_series_equal(loaded.forecast(12), model.forecast(12))
    assert loaded.learned() == model.learned()


def test_series_problems_are_data_errors(sunspots: pd.Series, macrodata: pd.DataFrame) -> None:
    learner = make_learner("arima", {})
    with pytest.raises(DataError, match="needs a label"):
        learner.fit(None, None)
    with pytest.raises(DataError, match="label 'label' is str, but forecasting needs numbers"):
        learner.fit(None, pd.Series(["a", "b", "c"]))
    exog = macrodata[["realcons"]].iloc[:50].copy()
    exog.iloc[4, 0] = np.nan
    with pytest.raises(DataError, match="exogenous feature 'realcons' has missing values"):
        learner.fit(exog, macrodata["realgdp"].iloc[:50])
    # Gaps in the series itself are fine: the Kalman filter skips them.
    gappy = sunspots.copy()
    gappy.iloc[[10, 11]] = np.nan
    assert len(learner.fit(None, gappy).forecast(2)) == 2
