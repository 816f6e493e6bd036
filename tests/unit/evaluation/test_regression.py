"""Regression, forecasting and clustering metrics, checked against scikit-learn on real data."""

from __future__ import annotations

import json

import numpy as np
import pytest
from sklearn import metrics as skm

from gristmill.errors import ConfigError, DataError
from gristmill.evaluation import evaluate
from gristmill.evaluation.result import MAX_POINTS

from .conftest import Output


def test_regression_metrics_equal_sklearns(diabetes: Output) -> None:
    result = evaluate("regression", [], diabetes.y_true, diabetes.y_pred)
    m = result.metrics
    assert set(m) == {"rmse", "mae", "r2", "residuals"}
    assert m["rmse"] == pytest.approx(
        np.sqrt(skm.mean_squared_error(diabetes.y_true, diabetes.y_pred))
    )
    assert m["mae"] == pytest.approx(skm.mean_absolute_error(diabetes.y_true, diabetes.y_pred))
    assert m["r2"] == pytest.approx(skm.r2_score(diabetes.y_true, diabetes.y_pred))
    residual = diabetes.y_true - diabetes.y_pred
    summary = m["residuals"]
    assert summary["mean"] == pytest.approx(residual.mean())
    assert summary["median"] == pytest.approx(np.median(residual))
    assert summary["count"] == len(residual)
    curve = result.curves["residuals"]
    assert len(curve["predicted"]) == len(curve["residual"]) == len(residual)  # 133 rows
    assert curve["predicted"] == sorted(curve["predicted"])
    assert json.loads(json.dumps(result.to_dict(), allow_nan=False))["task"] == "regression"


def test_residual_curve_is_thinned() -> None:
    rng = np.random.default_rng(1)
    truth = rng.normal(size=5000)
    result = evaluate("regression", ["residuals"], truth, truth + rng.normal(size=5000))
    assert len(result.curves["residuals"]["predicted"]) <= MAX_POINTS
    assert result.metrics["residuals"]["count"] == 5000


def test_forecasting_metrics(gdp: Output) -> None:
    result = evaluate(
        "forecasting", ["mape", "smape", "mase", "rmse"], gdp.y_true, gdp.y_pred,
        train_y=gdp.train_y,
    )  # fmt: skip
    m = result.metrics
    y, f = gdp.y_true, gdp.y_pred
    assert m["mape"] == pytest.approx(skm.mean_absolute_percentage_error(y, f))
    assert m["smape"] == pytest.approx(np.mean(2 * np.abs(y - f) / (np.abs(y) + np.abs(f))))
    naive = np.mean(np.abs(np.diff(gdp.train_y)))
    assert m["mase"] == pytest.approx(np.mean(np.abs(y - f)) / naive)
    assert m["rmse"] == pytest.approx(np.sqrt(np.mean((y - f) ** 2)))
    assert 0 < m["mape"] < 0.1  # a trend model on GDP is off by a few percent


def test_forecasting_defaults_and_the_zeros_of_mape(sunspots: Output) -> None:
    truth = sunspots.y_true.copy()
    truth[3] = 0.0
    result = evaluate("forecasting", [], truth, sunspots.y_pred, train_y=sunspots.train_y)
    assert set(result.metrics) == {"mae", "rmse", "smape", "mase", "residuals"}
    assert 0 <= result.metrics["smape"] <= 2
    with pytest.raises(DataError, match=r"mape is undefined where the true value is 0 \(1 row"):
        evaluate("forecasting", ["mape"], truth, sunspots.y_pred)
    with pytest.raises(ConfigError, match="metric 'mase' needs the training series"):
        evaluate("forecasting", ["mase"], truth, sunspots.y_pred)
    no_train = evaluate("forecasting", [], truth, sunspots.y_pred)
    assert "mase" not in no_train.metrics
    with pytest.raises(DataError, match="training series is constant"):
        evaluate("forecasting", ["mase"], truth, sunspots.y_pred, train_y=np.ones(10))


def test_smape_counts_zero_over_zero_as_no_error() -> None:
    result = evaluate("forecasting", ["smape"], [0.0, 2.0], [0.0, 1.0])
    assert result.metrics["smape"] == pytest.approx((0 + 2 * 1 / 3) / 2)


def test_clustering_metrics(wine_clusters: Output) -> None:
    result = evaluate(
        "clustering",
        [],
        wine_clusters.y_true,
        wine_clusters.y_pred,
        features=wine_clusters.features,
    )
    assert result.metrics["silhouette"] == pytest.approx(
        skm.silhouette_score(wine_clusters.features, wine_clusters.y_pred)
    )
    assert result.metrics["adjusted_rand"] == pytest.approx(
        skm.adjusted_rand_score(wine_clusters.y_true, wine_clusters.y_pred)
    )
    assert result.metrics["adjusted_rand"] > 0.8  # k-means on scaled wine finds the cultivars
    unlabelled = evaluate(
        "clustering", [], None, wine_clusters.y_pred, features=wine_clusters.features
    )
    assert set(unlabelled.metrics) == {"silhouette"}
    with pytest.raises(ConfigError, match="needs the features the model saw"):
        evaluate("clustering", ["silhouette"], None, wine_clusters.y_pred)
    with pytest.raises(DataError, match="the model made 1"):
        evaluate(
            "clustering", ["silhouette"], None, np.zeros(len(wine_clusters.features)),
            features=wine_clusters.features,
        )  # fmt: skip
