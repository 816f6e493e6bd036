"""Models fitted once on real data sets, whose outputs the evaluation tests measure."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm
from palmerpenguins import load_penguins
from sklearn.cluster import KMeans
from sklearn.datasets import load_breast_cancer, load_diabetes, load_wine
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.model_selection import train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from statsmodels.tsa.statespace.sarimax import SARIMAX


@dataclass
class Output:
    y_true: Any
    y_pred: Any
    proba: Any = None
    classes: Any = None
    train_y: Any = None
    features: Any = None


def _classifier(features: pd.DataFrame, y: pd.Series) -> Output:
    train_features, test_features, y_train, y_test = train_test_split(
        features, y, test_size=0.4, random_state=0, stratify=y
    )
    model = make_pipeline(StandardScaler(), LogisticRegression(C=0.05, max_iter=1000))
    model.fit(train_features, y_train)
    return Output(
        y_test.to_numpy(),
        model.predict(test_features),
        model.predict_proba(test_features),
        list(model.classes_),
    )


@pytest.fixture(scope="session")
def cancer() -> Output:
    """Binary: 0 malignant, 1 benign."""
    features, y = load_breast_cancer(return_X_y=True, as_frame=True)
    return _classifier(features, y)


@pytest.fixture(scope="session")
def wine() -> Output:
    features, y = load_wine(return_X_y=True, as_frame=True)
    return _classifier(features, y)


@pytest.fixture(scope="session")
def penguins() -> Output:
    frame = load_penguins().dropna()
    features = frame[["bill_length_mm", "bill_depth_mm", "flipper_length_mm", "body_mass_g"]]
    return _classifier(features, frame["species"])


@pytest.fixture(scope="session")
def diabetes() -> Output:
    features, y = load_diabetes(return_X_y=True, as_frame=True)
    train_features, test_features, y_train, y_test = train_test_split(
        features, y, test_size=0.3, random_state=0
    )
    model = Ridge(alpha=0.5).fit(train_features, y_train)
    return Output(y_test.to_numpy(), model.predict(test_features), train_y=y_train.to_numpy())


@pytest.fixture(scope="session")
def wine_clusters() -> Output:
    features, y = load_wine(return_X_y=True, as_frame=True)
    scaled = StandardScaler().fit_transform(features)
    labels = KMeans(n_clusters=3, n_init=4, random_state=0).fit_predict(scaled)
    return Output(y.to_numpy(), labels, features=scaled)


@pytest.fixture(scope="session")
def sunspots() -> Output:
    series = sm.datasets.sunspots.load_pandas().data["SUNACTIVITY"].to_numpy()
    train, test = series[:-20], series[-20:]
    forecast = SARIMAX(train, order=(2, 0, 0), trend="c").fit(disp=False).forecast(20)
    return Output(test, np.asarray(forecast), train_y=train)


@pytest.fixture(scope="session")
def gdp() -> Output:
    data = sm.datasets.macrodata.load_pandas().data
    series = data["realgdp"].to_numpy()
    train, test = series[:-12], series[-12:]
    forecast = SARIMAX(train, order=(1, 1, 0), trend="t").fit(disp=False).forecast(12)
    return Output(test, np.asarray(forecast), train_y=train)
