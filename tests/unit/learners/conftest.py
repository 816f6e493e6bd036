"""Real data sets for the learner tests: penguins, wine, diabetes, sunspots, macrodata."""

from __future__ import annotations

import pandas as pd
import pytest
import statsmodels.api as sm
from palmerpenguins import load_penguins
from sklearn.datasets import load_breast_cancer, load_diabetes, load_wine

PENGUIN_NUMBERS = ["bill_length_mm", "bill_depth_mm", "flipper_length_mm", "body_mass_g"]


@pytest.fixture(scope="session")
def penguins() -> pd.DataFrame:
    return load_penguins().dropna().reset_index(drop=True)


@pytest.fixture(scope="session")
def wine() -> tuple[pd.DataFrame, pd.Series]:
    frame, y = load_wine(return_X_y=True, as_frame=True)
    return frame, y


@pytest.fixture(scope="session")
def cancer() -> tuple[pd.DataFrame, pd.Series]:
    frame, y = load_breast_cancer(return_X_y=True, as_frame=True)
    return frame, y


@pytest.fixture(scope="session")
def diabetes() -> tuple[pd.DataFrame, pd.Series]:
    frame, y = load_diabetes(return_X_y=True, as_frame=True)
    return frame, y


@pytest.fixture(scope="session")
def sunspots() -> pd.Series:
    data = sm.datasets.sunspots.load_pandas().data
    index = pd.date_range("1700-01-01", periods=len(data), freq="YS")
    return pd.Series(data["SUNACTIVITY"].to_numpy(), index=index, name="sunactivity")


@pytest.fixture(scope="session")
def macrodata() -> pd.DataFrame:
    return sm.datasets.macrodata.load_pandas().data
