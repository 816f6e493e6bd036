"""Registered versions compile to one ONNX graph (feature pipeline + learner) that answers the
held-out rows as the native scorer does, and load again from the artifact store."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from palmerpenguins import load_penguins
from sklearn.datasets import load_breast_cancer, load_diabetes, load_wine

from gristmill.config.settings import Settings, load_settings
from gristmill.errors import DataError
from gristmill.runtime.wiring import open_services, open_stores
from gristmill.servables import load_servable
from gristmill.servables.onnx_servable import OnnxServable
from gristmill.servables.storage import recorded
from gristmill.stores.models import ModelVersion
from gristmill.testing.registered import train_and_register, write_csv
from gristmill.training.bundle import load_scorer

pytestmark = pytest.mark.slow
NUMBERS = ["bill_length_mm", "bill_depth_mm", "flipper_length_mm", "body_mass_g"]


def _cancer(folder: Path) -> tuple[Path, list[str]]:
    frame = load_breast_cancer(as_frame=True).frame
    frame.columns = [c.replace(" ", "_") for c in frame.columns]
    return write_csv(frame, folder, "cancer"), [c for c in frame.columns if c != "target"]


def _penguins(folder: Path) -> Path:
    frame = load_penguins()
    frame.insert(0, "penguin_id", [f"p{i:04d}" for i in range(len(frame))])
    return write_csv(frame, folder, "penguins")


async def _train_all(settings: Settings, folder: Path) -> dict[str, ModelVersion]:
    cancer, features = _cancer(folder)
    diabetes = write_csv(load_diabetes(as_frame=True, scaled=False).frame, folder, "diabetes")
    wine = write_csv(load_wine(as_frame=True).frame.drop(columns=["target"]), folder, "wine")
    penguins = _penguins(folder)
    versions: dict[str, ModelVersion] = {}
    async with open_services(settings) as services:
        made = await train_and_register(
            services,
            cancer,
            model="cancer",
            section={
                "label": "target",
                "steps": [{"standardize": {"columns": features}}],
                "select": {"method": "mutual_info", "k": 8},
            },
            candidates=[
                {"name": "logreg", "algorithm": "logistic_regression", "params": {"C": 0.5}},
                {"name": "forest", "algorithm": "random_forest", "params": _forest()},
                {"name": "boosting", "algorithm": "gradient_boosting", "params": {"max_iter": 30}},
            ],
            metric="accuracy",
            split={"strategy": "stratified", "test_size": 0.3, "seed": 7},
        )
        versions |= {v.model: v for v in made.values()}
        made = await train_and_register(
            services,
            diabetes,
            model="diabetes",
            section={"label": "target", "steps": [{"scale": {"columns": ["bmi", "bp"]}}]},
            candidates=[
                {"name": "linear", "algorithm": "linear_regression"},
                {"name": "trees", "algorithm": "random_forest", "params": _forest()},
            ],
            metric="rmse",
        )
        versions |= {v.model: v for v in made.values()}
        made = await train_and_register(
            services,
            wine,
            model="wine",
            section={"steps": [{"standardize": {"columns": ["alcohol", "proline", "hue"]}}]},
            candidates=[{"name": "kmeans", "algorithm": "kmeans", "params": _kmeans()}],
            metric="silhouette",
        )
        versions |= {v.model: v for v in made.values()}
        made = await train_and_register(
            services,
            penguins,
            model="penguins",
            section=_penguin_section(),
            candidates=[{"name": "logreg", "algorithm": "logistic_regression"}],
            metric="accuracy",
            split={"strategy": "stratified", "test_size": 0.3, "seed": 7},
        )
        versions |= {v.model: v for v in made.values()}
    return versions


def _forest() -> dict[str, Any]:
    return {"n_estimators": 15, "max_depth": 6, "random_state": 0, "n_jobs": 1}


def _kmeans() -> dict[str, Any]:
    return {"n_clusters": 3, "n_init": 3, "random_state": 0}


def _penguin_section() -> dict[str, Any]:
    """Every built-in step with an ONNX form, and label-based selection."""
    return {
        "entity": "penguin_id",
        "label": "species",
        "steps": [
            {"impute": {"columns": NUMBERS, "strategy": "median"}},
            {"impute": {"columns": ["sex"], "strategy": "most_frequent"}},
            {"derive": {"name": "bill_ratio", "expr": "bill_length_mm / bill_depth_mm"}},
            {"derive": {"name": "dream", "expr": "island in ['Dream'] and not (sex == 'male')"}},
            {"derive": {"name": "heavy", "expr": "(body_mass_g // 1000) % 3 + abs(-1)"}},
            {"one_hot": {"columns": ["island", "sex"], "drop": "if_binary"}},
            {"ordinal": {"columns": ["year"]}},
            {"bucketize": {"columns": ["flipper_length_mm"], "edges": [190, 210]}},
            {"log": {"columns": ["bill_depth_mm"]}},
            {"power": {"columns": ["body_mass_g"]}},
            {"scale": {"columns": ["bill_length_mm"], "method": "robust"}},
            {"standardize": {"columns": ["bill_ratio"]}},
        ],
        "select": {"method": "mutual_info", "k": 9},
    }


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> tuple[Settings, dict[str, ModelVersion]]:
    folder = tmp_path_factory.mktemp("servables")
    settings = load_settings(
        overrides={"home": str(folder / "home"), "executor": {"backend": "inline"}}
    )
    return settings, asyncio.run(_train_all(settings, folder))


@pytest.mark.parametrize(
    ("candidate", "output", "tolerance"),
    [
        ("logreg", "probabilities", 1e-7),
        ("forest", "probabilities", 1e-4),
        ("boosting", "probabilities", 1e-4),
    ],
)
def test_classifiers_compile_to_onnx_with_parity(
    trained: tuple[Settings, dict[str, ModelVersion]], candidate: str, output: str, tolerance: float
) -> None:
    settings, versions = trained
    version = versions[f"cancer_{candidate}"]
    with open_stores(settings) as stores:
        servable = load_servable(stores, version.model)
        manifest = servable.manifest
        assert isinstance(servable, OnnxServable)
        assert (manifest.kind, manifest.output, manifest.task) == ("onnx", output, "classification")
        assert manifest.classes == (0, 1)
        parity = manifest.parity
        assert parity is not None and parity.passed and parity.classes_equal
        # 171 test rows, and a row per column that may be missing, with it missing
        nullable = [c for c in manifest.inputs if c.nullable]
        assert parity.rows == 171 + len(nullable)
        assert parity.rows_from.startswith("test rows of split")
        assert parity.tolerance == tolerance and parity.max_abs_diff is not None
        assert parity.max_abs_diff <= tolerance
        # Selection kept 8 features of 30: only the raw columns they read are asked for.
        assert len(manifest.inputs) == 8 and len(manifest.features) == 8
        assert {"onnx", "onnxruntime", "skl2onnx", "scikit-learn"} <= set(manifest.libraries)
        assert manifest.bundle == version.artifact and manifest.digest.startswith("sha256:")

        # Scored through the native scorer, the same rows give the same answers.
        frame = pd.read_csv(Path(settings.home).parent / "cancer.csv").head(40)
        scorer = load_scorer(stores, stores.metadata.candidates.get_candidate(version.candidate_id))
        names = [c.name for c in manifest.inputs]
        answer = servable.predict({n: frame[n].to_numpy() for n in names})
        assert np.array_equal(answer.values, scorer.predict(frame).to_numpy())
        assert answer.probabilities is not None
        native = scorer.predict_proba(frame).to_numpy()
        assert np.abs(answer.probabilities - native).max() <= tolerance

        # The features path (online vectors) answers as the raw path does.
        features = scorer.features(frame)
        by_features = servable.predict_features(
            {n: features[n].to_numpy() for n in scorer.feature_names}
        )
        assert np.array_equal(by_features.values, answer.values)

        # Loaded again, it is the same servable, from the store, not compiled anew.
        again = load_servable(stores, version.model, version.version, compile=False)
        assert again.manifest == manifest
        assert recorded(stores, version) == manifest.digest


def test_a_regression_model_and_a_forest_regressor(
    trained: tuple[Settings, dict[str, ModelVersion]],
) -> None:
    settings, versions = trained
    with open_stores(settings) as stores:
        for name, tolerance in (("diabetes_linear", 1e-7), ("diabetes_trees", 1e-4)):
            manifest = load_servable(stores, versions[name].model).manifest
            assert (manifest.kind, manifest.output, manifest.classes) == ("onnx", "number", None)
            assert manifest.parity is not None and manifest.parity.passed, manifest.parity
            assert manifest.parity.tolerance == tolerance
            assert manifest.parity.classes_equal is None
            assert "bmi" in [c.name for c in manifest.inputs]


def test_a_clustering_model(trained: tuple[Settings, dict[str, ModelVersion]]) -> None:
    settings, versions = trained
    with open_stores(settings) as stores:
        servable = load_servable(stores, versions["wine_kmeans"].model)
        manifest = servable.manifest
        assert (manifest.kind, manifest.output, manifest.task) == ("onnx", "cluster", "clustering")
        assert manifest.parity is not None and manifest.parity.classes_equal
        frame = load_wine(as_frame=True).frame.head(5)
        answer = servable.predict({c.name: frame[c.name].to_numpy() for c in manifest.inputs})
        assert answer.values.dtype == np.int64 and set(answer.values) <= {0, 1, 2}


def test_every_onnx_step_on_penguins(trained: tuple[Settings, dict[str, ModelVersion]]) -> None:
    """impute (numbers, text), derive, one_hot, ordinal, bucketize, log, power, scale and
    standardize as graph nodes; text with gaps; selection narrowing the raw inputs."""
    settings, _versions = trained
    with open_stores(settings) as stores:
        servable = load_servable(stores, "penguins_logreg")
        manifest = servable.manifest
        assert manifest.kind == "onnx", manifest.reason
        assert manifest.parity is not None and manifest.parity.passed, manifest.parity
        assert manifest.classes == ("Adelie", "Chinstrap", "Gentoo")
        assert manifest.entity == "penguin_id" and manifest.view == "penguins_v1"
        assert all(c.online for c in manifest.features)
        assert "penguin_id" not in [c.name for c in manifest.inputs]
        types = {c.name: c.type for c in manifest.inputs}
        assert types.get("island", "string") == "string"
        penguins = load_penguins()
        rows = penguins[penguins["sex"].isna() | penguins["bill_length_mm"].isna()]
        answer = servable.predict({n: rows[n].to_numpy() for n in types})
        assert len(answer.values) == len(rows) > 0
        assert set(answer.values) <= {"Adelie", "Chinstrap", "Gentoo"}


def test_a_missing_or_mistyped_column_is_named(
    trained: tuple[Settings, dict[str, ModelVersion]],
) -> None:
    settings, _versions = trained
    with open_stores(settings) as stores:
        servable = load_servable(stores, "cancer_logreg")
        names = [c.name for c in servable.manifest.inputs]
        frame = pd.read_csv(Path(settings.home).parent / "cancer.csv").head(3)
        columns: dict[str, Any] = {n: frame[n].to_numpy() for n in names}
        with pytest.raises(DataError, match=f"column '{names[0]}' is missing") as missing:
            servable.predict({n: v for n, v in columns.items() if n != names[0]})
        assert missing.value.column == names[0]
        with pytest.raises(DataError, match=f"column '{names[1]}' takes numbers") as mistyped:
            servable.predict({**columns, names[1]: ["1.5", "abc", "2"]})  # "1.5" is text too
        assert (mistyped.value.column, mistyped.value.row) == (names[1], 0)
        with pytest.raises(DataError, match=f"column '{names[2]}' may not be missing"):
            servable.predict({**columns, names[2]: [1.0, None, 2.0]})
        with pytest.raises(DataError, match="has 2 row"):
            servable.predict({**columns, names[3]: [1.0, 2.0]})
        none = servable.predict({n: np.empty(0) for n in names})
        assert none.values.shape == (0,)
        assert none.probabilities is not None and none.probabilities.shape == (0, 2)
