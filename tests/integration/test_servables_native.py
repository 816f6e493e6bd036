"""Versions ONNX cannot express are served natively, and say why; a servable whose stored
bytes were altered is refused at load."""

from __future__ import annotations

import asyncio
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm
from sklearn.datasets import load_breast_cancer

from gristmill.config.settings import Settings, load_settings
from gristmill.errors import ConflictError
from gristmill.runtime.wiring import open_services, open_stores
from gristmill.servables import compile_version, load_servable
from gristmill.servables.native import NativeServable
from gristmill.servables.onnx_servable import OnnxServable
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
