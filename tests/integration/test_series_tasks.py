"""A weekly series with gaps, forecast and regressed on its lags, in the spec alone — each
held against the same task written by hand with pandas, statsmodels and scikit-learn.

The data are statsmodels' Mauna Loa CO2 readings, 2,284 weeks (1958-2001), 59 of them
missing. The split is sequential with the last 104 weeks (two years) as the test subset.
Series steps compute each subset from its own rows (ADR 27): the hand-written baselines
do the same, and the leakage tests show that nothing crosses the split either way.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LinearRegression
from statsmodels.datasets import co2
from statsmodels.tsa.statespace.sarimax import SARIMAX

from gristmill.config.settings import load_settings
from gristmill.config.spec import parse_spec
from gristmill.core.events import FEATURES_GENERATED, MODEL_EVALUATED, MODEL_TRAINED
from gristmill.errors import ConfigError, SpecError
from gristmill.runtime.pipeline_run import RunReport, run_pipeline
from gristmill.runtime.wiring import Services, open_services
from gristmill.servables import load_servable
from gristmill.stages.spec_checks import preflight
from gristmill.stores.features import FeatureSet
from gristmill.training.bundle import load_scorer
from gristmill.training.gate import promote
from gristmill.training.splits import fitted_split

pytestmark = pytest.mark.slow

TEST_WEEKS = 104
LAGS = ["co2_lag1", "co2_lag2", "co2_lag52"]
WINDOWS = ["co2_rolling4_mean", "co2_rolling4_std"]


def weeks() -> pd.DataFrame:
    """Every week, a missing reading as a missing value."""
    return co2.load_pandas().data.reset_index(names="week")


@pytest.fixture
async def services(tmp_path: Path) -> AsyncIterator[Services]:
    settings = load_settings(
        overrides={"home": str(tmp_path / ".gristmill"), "executor": {"backend": "inline"}}
    )
    async with open_services(settings) as opened:
        yield opened


def spec_of(csv: Path, steps: list[dict[str, Any]], candidate: dict[str, Any], **more: Any) -> Any:
    return parse_spec(
        {
            "name": "co2",
            "sources": {"co2": {"format": "csv", "path": str(csv)}},
            "features": {
                "weekly": {"from": ["co2"], "timestamp": "week", "label": "co2", "steps": steps}
            },
            "split": {"strategy": "sequential", "test_size": TEST_WEEKS},
            "train": {"candidates": [{"name": "model", **candidate}]},
            **more,
        }
    )


async def run(services: Services, spec: Any) -> RunReport:
    report = await run_pipeline(spec, services, timeout=600)
    assert report.run.status == "succeeded", report.run.summary
    return report


def metrics(report: RunReport) -> dict[str, Any]:
    (evaluated,) = report.of_type(MODEL_EVALUATED)
    (row,) = evaluated.payload["leaderboard"]
    return dict(row["metrics"])


def feature_set(services: Services, report: RunReport) -> FeatureSet:
    (generated,) = report.of_type(FEATURES_GENERATED)
    return services.metadata.feature_sets.get_feature_set(generated.payload["feature_set_id"])


# -- forecasting a series with weeks missing ---------------------------------------------


def regular(part: pd.DataFrame) -> pd.Series:
    """A part's weeks made regular and interpolated by time, as pandas does it."""
    series = part.set_index("week")["co2"]
    grid = pd.date_range(series.index.min(), series.index.max(), freq="W-SAT")
    return series.reindex(grid).interpolate(method="time", limit_area="inside")


async def test_a_series_with_missing_weeks_is_forecast_as_by_hand(
    services: Services, tmp_path: Path
) -> None:
    gappy = weeks().dropna().reset_index(drop=True)  # the 59 weeks have no row at all
    gappy.to_csv(tmp_path / "co2.csv", index=False)
    fill = {"columns": ["co2"], "method": "interpolate", "time": "week", "freq": "W-SAT"}
    arima = {"algorithm": "arima", "params": {"order": [2, 1, 1]}}
    spec = spec_of(
        tmp_path / "co2.csv",
        [{"fill_gaps": fill}],
        arima,
        evaluate={"metric": "mae", "evaluators": ["rmse"]},
    )
    report = await run(services, spec)

    cut = len(gappy) - TEST_WEEKS  # the count is of input rows
    train, test = regular(gappy.iloc[:cut]), regular(gappy.iloc[cut:])
    fitted = SARIMAX(train.to_numpy(), order=(2, 1, 1), trend="n").fit(disp=False, maxiter=50)
    forecast = fitted.forecast(len(test))
    got = metrics(report)
    assert got["mae"] == pytest.approx(np.mean(np.abs(test.to_numpy() - forecast)), rel=1e-6)
    assert got["rmse"] == pytest.approx(np.sqrt(np.mean((test - forecast) ** 2)), rel=1e-6)

    fs = feature_set(services, report)
    result = fitted_split(spec, fs, services.feature_stores())
    assert result.train.num_rows == len(train) and result.test.num_rows == len(test)
    assert fs.row_count == len(train) + len(test)  # the weeks each subset skipped, added
    assert fs.selection["learned"]["steps"][0]["learned"]["rows_added"] > 0
    added = [i for i in result.test.column("_row_id").to_pylist() if ":+" in i]
    assert len(added) == len(test) - TEST_WEEKS
    (trained,) = report.of_type(MODEL_TRAINED)
    assert trained.payload["warnings"] == []  # the trend is no warning …
    (note,) = trained.payload["notes"]  # … but a note, said once
    assert "column 'co2' trends with time" in note and "sequential split" in note


# -- a regression on lags and rolling windows --------------------------------------------

LAG_STEPS: list[dict[str, Any]] = [
    {"fill_gaps": {"columns": ["co2"], "method": "ffill", "time": "week"}},
    {"lag": {"columns": ["co2"], "periods": [1, 2, 52], "time": "week"}},
    {"rolling": {"columns": ["co2"], "window": 4, "stats": ["mean", "std"], "time": "week"}},
]


def by_hand(part: pd.DataFrame) -> tuple[pd.DataFrame, pd.Series]:
    """The lag features of one subset, from its own rows only."""
    y = part["co2"].ffill()
    past = y.shift(1)
    features = {f"co2_lag{p}": y.shift(p) for p in (1, 2, 52)}
    features |= {
        "co2_rolling4_mean": past.rolling(4).mean(),
        "co2_rolling4_std": past.rolling(4).std(),
    }
    return pd.DataFrame(features), y


async def test_a_regression_on_lags_matches_its_baseline_and_serves(
    services: Services, tmp_path: Path
) -> None:
    frame = weeks()
    frame.to_csv(tmp_path / "co2.csv", index=False)
    impute = {"impute": {"columns": LAGS + WINDOWS, "strategy": "median"}}
    spec = spec_of(
        tmp_path / "co2.csv",
        [*LAG_STEPS, impute],
        {"algorithm": "linear_regression"},
        evaluate={"metric": "rmse", "evaluators": ["mae"]},
    )
    report = await run(services, spec)

    cut = len(frame) - TEST_WEEKS
    x_train, y_train = by_hand(frame.iloc[:cut])
    x_test, y_test = by_hand(frame.iloc[cut:])
    medians = x_train.median()
    model = LinearRegression().fit(x_train.fillna(medians), y_train)
    predicted = model.predict(x_test.fillna(medians))
    got = metrics(report)
    assert got["rmse"] == pytest.approx(np.sqrt(np.mean((y_test - predicted) ** 2)), rel=1e-6)
    assert got["mae"] == pytest.approx(np.mean(np.abs(y_test - predicted)), rel=1e-6)

    # Served: natively (the series steps read other rows), from the rows of one request.
    (evaluated,) = report.of_type(MODEL_EVALUATED)
    version = promote(services.metadata, evaluated.payload["best"], "co2").version
    stores = services.feature_stores()
    servable = load_servable(stores, "co2")
    manifest = servable.manifest
    assert manifest.kind == "native"
    assert "step 'rolling' has no ONNX form: it reads earlier rows" in manifest.reason
    assert {c.name for c in manifest.inputs} == {"week", "co2"}  # the label's past is an input
    assert manifest.parity is not None and manifest.parity.passed
    recent = frame.tail(70).copy()
    recent.loc[recent.index[-4:], "co2"] = np.nan  # the weeks to predict
    days = recent["week"].dt.strftime("%Y-%m-%d").to_numpy(dtype=object)  # a CSV's dates: text
    answer = servable.predict({"week": days, "co2": recent["co2"].to_numpy()})
    assert answer.values.shape == (70,) and np.isfinite(answer.values.astype(float)).all()
    candidate = services.metadata.candidates.get_candidate(version.candidate_id)
    scorer = load_scorer(stores, candidate)
    assert np.allclose(answer.values.astype(float), scorer.predict(recent).to_numpy())
    x_recent, _ = by_hand(recent)
    expected = model.predict(x_recent.fillna(medians))
    assert np.allclose(answer.values.astype(float)[-4:], expected[-4:])


async def test_nothing_crosses_the_split_either_way(services: Services, tmp_path: Path) -> None:
    """Moving the test weeks does not move a training row's lags, nor the other way round;
    the first test weeks have no lag of a training week."""
    frame = weeks()
    cut = len(frame) - TEST_WEEKS
    variants = {
        "base": frame,
        "test moved": frame.assign(co2=frame["co2"] + np.where(frame.index >= cut, 1000.0, 0.0)),
        "train moved": frame.assign(co2=frame["co2"] + np.where(frame.index < cut, 1000.0, 0.0)),
    }
    subsets: dict[str, dict[str, pd.DataFrame]] = {}
    for name, data in variants.items():
        csv = tmp_path / f"{name.replace(' ', '_')}.csv"
        data.to_csv(csv, index=False)
        spec = spec_of(csv, LAG_STEPS, {"algorithm": "gradient_boosting"})
        report = await run(services, spec)
        result = fitted_split(spec, feature_set(services, report), services.feature_stores())
        subsets[name] = {
            s: result.table(s).to_pandas().set_index("week")[LAGS + WINDOWS]
            for s in ("train", "test")
        }
    base = subsets["base"]
    pd.testing.assert_frame_equal(subsets["test moved"]["train"], base["train"])
    pd.testing.assert_frame_equal(subsets["train moved"]["test"], base["test"])
    assert not subsets["test moved"]["test"].equals(base["test"])  # the test rows did move
    first = base["test"].iloc[0]
    assert first[LAGS + WINDOWS].isna().all()  # not the last training week
    assert base["test"]["co2_lag52"].iloc[52:].notna().all()


async def test_series_steps_refuse_a_split_that_scatters_the_series(tmp_path: Path) -> None:
    weeks().to_csv(tmp_path / "co2.csv", index=False)
    spec = spec_of(
        tmp_path / "co2.csv",
        LAG_STEPS,
        {"algorithm": "gradient_boosting"},
        split={"strategy": "shuffled", "test_size": 0.25, "seed": 0},
    )
    with pytest.raises(ConfigError, match=r"split\.strategy 'shuffled' scatters a series' rows"):
        preflight(spec)


def test_a_lag_of_the_label_after_interpolating_it_is_refused(tmp_path: Path) -> None:
    spec = spec_of(
        tmp_path / "co2.csv",
        [{"fill_gaps": {"columns": ["co2"]}}, {"lag": {"columns": ["co2"]}}],
        {"algorithm": "gradient_boosting"},
    )
    with pytest.raises((ConfigError, SpecError), match="a row's own label would reach"):
        preflight(spec)
