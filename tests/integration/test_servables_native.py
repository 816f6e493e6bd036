"""Versions ONNX cannot express are served natively, and say why; a servable whose stored
bytes were altered is refused at load."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm
from sklearn.datasets import load_breast_cancer

from gristmill.config.settings import Settings, load_settings
from gristmill.errors import ConflictError, DataError
from gristmill.runtime.wiring import open_services, open_stores
from gristmill.servables import compile_version, load_servable
from gristmill.servables.native import NativeServable
from gristmill.servables.onnx_servable import OnnxServable
from gristmill.servables.parity import describe
from gristmill.servables.storage import recorded
from gristmill.stores.models import ModelVersion
from gristmill.testing.registered import train_and_register, write_csv
from gristmill.training.bundle import load_scorer

pytestmark = pytest.mark.slow


async def _train_all(settings: Settings, folder: Path) -> dict[str, ModelVersion]:
    frame = load_breast_cancer(as_frame=True).frame
    frame.columns = [c.replace(" ", "_") for c in frame.columns]
    cancer = write_csv(frame[["mean_radius", "mean_texture", "mean_area", "target"]], folder, "c")
    sunspots = write_csv(sm.datasets.sunspots.load_pandas().data, folder, "sunspots")
    logreg = [{"name": "logreg", "algorithm": "logistic_regression"}]
    versions: dict[str, ModelVersion] = {}
    async with open_services(settings) as services:
        for model, steps in (
            ("custom", [{"sklearn.preprocessing:QuantileTransformer": _quantiles()}]),
            ("filtered", [{"filter": {"expr": "mean_radius > 10"}}]),
            ("plain", [{"standardize": {"columns": ["mean_radius", "mean_area"]}}]),
        ):
            made = await train_and_register(
                services,
                cancer,
                model=model,
                section={"label": "target", "steps": steps},
                candidates=logreg,
                metric="accuracy",
            )
            versions[model] = made["logreg"]
        made = await train_and_register(
            services,
            sunspots,
            model="sunspots",
            section={"label": "SUNACTIVITY", "timestamp": "YEAR"},
            candidates=[{"name": "arima", "algorithm": "arima", "params": {"order": [2, 0, 0]}}],
            metric="smape",
            split={"strategy": "sequential", "test_size": 0.1},
        )
        versions["sunspots"] = made["arima"]
    return versions


def _quantiles() -> dict[str, object]:
    return {"columns": ["mean_texture"], "n_quantiles": 50}


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> tuple[Settings, dict[str, ModelVersion]]:
    folder = tmp_path_factory.mktemp("native")
    settings = load_settings(
        overrides={"home": str(folder / "home"), "executor": {"backend": "inline"}}
    )
    return settings, asyncio.run(_train_all(settings, folder))


def _rows(settings: Settings) -> pd.DataFrame:
    return pd.read_csv(Path(settings.home).parent / "c.csv")


def test_a_custom_step_is_served_natively(
    trained: tuple[Settings, dict[str, ModelVersion]],
) -> None:
    settings, versions = trained
    with open_stores(settings) as stores:
        servable = load_servable(stores, versions["custom"].model)
        manifest = servable.manifest
        assert isinstance(servable, NativeServable)
        assert manifest.kind == "native"
        assert "'sklearn.preprocessing:QuantileTransformer' is a custom step" in manifest.reason
        assert "one pandas DataFrame built per request" in manifest.reason
        assert manifest.parity is not None and manifest.parity.passed
        assert manifest.parity.max_abs_diff == 0.0
        rows = _rows(settings).head(20)
        answer = servable.predict({c.name: rows[c.name].to_numpy() for c in manifest.inputs})
        candidate = stores.metadata.candidates.get_candidate(versions["custom"].candidate_id)
        scorer = load_scorer(stores, candidate)
        assert np.array_equal(answer.values, scorer.predict(rows).to_numpy())
        assert answer.probabilities is not None and answer.rejected is None
        # Reloaded from the store: native again, through the trusted skops loader.
        again = load_servable(stores, manifest.model, compile=False)
        assert isinstance(again, NativeServable) and again.manifest == manifest


def test_a_filter_step_is_served_natively_and_rejected_rows_keep_their_place(
    trained: tuple[Settings, dict[str, ModelVersion]],
) -> None:
    settings, versions = trained
    with open_stores(settings) as stores:
        servable = load_servable(stores, versions["filtered"].model)
        assert servable.manifest.kind == "native"
        assert "step 'filter' has no ONNX form" in servable.manifest.reason
        radius = np.array([8.0, 14.0, 9.5, 20.0])
        answer = servable.predict(
            {"mean_radius": radius, "mean_texture": np.full(4, 20.0), "mean_area": radius * 40}
        )
        assert answer.rejected is not None
        assert answer.rejected.tolist() == [True, False, True, False]
        assert answer.values[0] is None and answer.values[1] in (0, 1)
        assert answer.probabilities is not None and np.isnan(answer.probabilities[0]).all()


def test_a_forecaster_is_served_natively(
    trained: tuple[Settings, dict[str, ModelVersion]],
) -> None:
    settings, versions = trained
    with open_stores(settings) as stores:
        servable = load_servable(stores, versions["sunspots"].model)
        manifest = servable.manifest
        assert (manifest.kind, manifest.output, manifest.task) == (
            "native",
            "forecast",
            "forecasting",
        )
        assert "learner 'arima' (FittedSarimax) has no ONNX form" in manifest.reason
        assert [c.name for c in manifest.inputs] == ["YEAR"]
        assert manifest.parity is not None and manifest.parity.passed
        answer = servable.predict({"YEAR": np.array([1988.0, 1989.0, 1990.0])})
        assert answer.values.shape == (3,) and np.isfinite(answer.values).all()


def test_a_tampered_servable_is_refused_and_can_be_compiled_again(
    trained: tuple[Settings, dict[str, ModelVersion]],
) -> None:
    settings, versions = trained
    version = versions["plain"]
    with open_stores(settings) as stores:
        first = load_servable(stores, version.model)
        assert isinstance(first, OnnxServable)
        digest = recorded(stores, version)
        assert digest == first.manifest.digest
        artifacts = Path(settings.artifacts_url())
        graphs = [p for p in (artifacts / "onnx").iterdir() if "." not in p.name]
        assert len(graphs) == 2  # the joined graph and the learner's own
        for path in graphs:
            data = bytearray(path.read_bytes())
            data[len(data) // 2] ^= 0xFF
            path.write_bytes(bytes(data))
        with pytest.raises(ConflictError) as refused:
            load_servable(stores, version.model)
        message = str(refused.value)
        assert "refusing to load the ONNX graph of plain_logreg/1" in message
        assert "do not match that digest" in message
        assert f"gristmill compile {version.ref} --force" in message

        # The manifest itself altered: refused too.
        manifest = artifacts / "servable" / digest.removeprefix("sha256:")
        manifest.write_bytes(manifest.read_bytes().replace(b'"onnx"', b'"native"', 1))
        with pytest.raises(ConflictError, match="refusing to load the servable of plain_logreg/1"):
            load_servable(stores, version.model)

        # Compiled again from the (intact) bundle, the same bytes are written back whole.
        again = compile_version(stores, version)
        assert again.manifest.digest == digest
        assert load_servable(stores, version.model).manifest == first.manifest


CENTROID = '''
import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin


class Centroid(BaseEstimator, ClassifierMixin):
    """Nearest centroid, by arithmetic that lets a gap through as NaN (and argmax makes
    class 0 of it): the kind of estimator a person writes."""

    def fit(self, X, y):
        X, y = np.asarray(X, dtype=float), np.asarray(y)
        self.classes_ = np.unique(y)
        self.centroids_ = np.stack([X[y == c].mean(axis=0) for c in self.classes_])
        return self

    def predict_proba(self, X):
        d = ((np.asarray(X, dtype=float)[:, None, :] - self.centroids_[None]) ** 2).sum(-1)
        e = np.exp(-(d - d.min(1, keepdims=True)))
        return e / e.sum(1, keepdims=True)

    def predict(self, X):
        return self.classes_[self.predict_proba(X).argmax(1)]
'''


@pytest.fixture(scope="module")
def twins(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Settings, dict[str, Any]]]:
    """A custom estimator (native) and a logistic regression (ONNX) on one feature set whose
    entity is a row key no feature reads; one of its columns imputed."""
    folder = tmp_path_factory.mktemp("twins")
    (folder / "gm_centroid.py").write_text(CENTROID)
    sys.path.insert(0, str(folder))
    settings = load_settings(
        overrides={"home": str(folder / "home"), "executor": {"backend": "inline"}}
    )
    frame = load_breast_cancer(as_frame=True).frame
    frame.columns = [c.replace(" ", "_") for c in frame.columns]
    frame = frame[["mean_radius", "mean_texture", "mean_area", "target"]]
    frame.insert(0, "row_id", [f"r{i:04d}" for i in range(len(frame))])
    section = {
        "entity": "row_id",
        "label": "target",
        "steps": [
            {"impute": {"columns": ["mean_texture"], "strategy": "median"}},
            {"standardize": {"columns": ["mean_radius", "mean_area"]}},
        ],
    }
    candidates = [
        {"name": "centroid", "algorithm": "gm_centroid:Centroid"},
        {"name": "logreg", "algorithm": "logistic_regression"},
    ]

    async def train() -> dict[str, ModelVersion]:
        async with open_services(settings) as services:
            return await train_and_register(
                services,
                write_csv(frame, folder, "rows"),
                model="twin",
                section=section,
                candidates=candidates,
                metric="accuracy",
            )

    try:
        yield settings, {"versions": asyncio.run(train()), "frame": frame}
    finally:
        sys.path.remove(str(folder))
        sys.modules.pop("gm_centroid", None)


def test_a_native_version_asks_for_the_inputs_its_onnx_twin_does(
    twins: tuple[Settings, dict[str, Any]],
) -> None:
    """Not the entity key (no feature reads it): a client that sends what the ONNX version
    of the same feature set takes is served when the native one is promoted."""
    settings, made = twins
    versions, frame = made["versions"], made["frame"]
    with open_stores(settings) as stores:
        native = load_servable(stores, versions["centroid"].model)
        onnx = load_servable(stores, versions["logreg"].model)
        assert isinstance(native, NativeServable) and isinstance(onnx, OnnxServable)
        assert native.manifest.entity == "row_id"
        names = [c.name for c in native.manifest.inputs]
        assert names == [c.name for c in onnx.manifest.inputs]
        assert names == ["mean_radius", "mean_texture", "mean_area"]
        rows = frame.head(30)
        answer = native.predict({name: rows[name].to_numpy() for name in names})
        expected = native.scorer.predict(rows).to_numpy()  # with the key, as trained
        assert np.array_equal(answer.values, expected)
        assert native.manifest.parity is not None and native.manifest.parity.passed


def test_a_gap_a_custom_estimator_answers_with_nan_is_refused_naming_the_column(
    twins: tuple[Settings, dict[str, Any]],
) -> None:
    settings, made = twins
    versions, frame = made["versions"], made["frame"]
    with open_stores(settings) as stores:
        servable = load_servable(stores, versions["centroid"].model)
        manifest = servable.manifest
        nullable = {c.name: c.nullable for c in manifest.inputs}
        # blanked, mean_radius makes NaN probabilities: not nullable; mean_texture is imputed
        assert nullable == {"mean_radius": False, "mean_texture": True, "mean_area": False}
        parity = manifest.parity
        assert parity is not None and parity.blanked == 1 and parity.rows == 171 + 1
        assert describe(parity).startswith(
            "171 test rows of split sp_"
        ) and "plus 1 blanked copy of one of them (one column missing in each)" in describe(parity)
        rows = frame.head(3)
        columns = {c.name: rows[c.name].to_numpy(dtype=float) for c in manifest.inputs}
        columns["mean_radius"] = np.array([15.0, np.nan, 12.0])
        with pytest.raises(DataError, match="column 'mean_radius' may not be missing") as gap:
            servable.predict(columns)
        assert gap.value.row == 1
        # compiled before NaN answers counted as refusals: every input was "nullable",
        # and a gap was answered with a made-up class; now a 4xx naming column and row
        trusting = replace(
            manifest, inputs=tuple(replace(c, nullable=True) for c in manifest.inputs)
        )
        old = NativeServable(trusting, servable.scorer)
        with pytest.raises(
            DataError, match="because column\\(s\\) 'mean_radius' are missing"
        ) as nan:
            old.predict(columns)
        assert (nan.value.column, nan.value.row) == ("mean_radius", 1)
        columns["mean_radius"] = np.array([15.0, 14.0, 12.0])
        assert len(old.predict(columns).values) == 3
