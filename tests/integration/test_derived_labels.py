"""A label derived by expression, the rows without one, and the columns it reads — on
palmerpenguins, held against the same task written by hand with scikit-learn.

``heavy`` is ``body_mass_g > 4200``: two penguins were never weighed, so they have no
label. ``body_mass_g`` holds the answer: it is no feature and no input of the model.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from palmerpenguins import load_penguins
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import accuracy_score, f1_score
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from gristmill.config.settings import load_settings
from gristmill.config.spec import parse_spec
from gristmill.core.events import FEATURES_GENERATED, MODEL_EVALUATED
from gristmill.features.prepare import load_pipeline
from gristmill.runtime.pipeline_run import RunReport, run_pipeline
from gristmill.runtime.wiring import Services, open_services
from gristmill.servables import load_servable
from gristmill.stages.base import STAGE_FAILED
from gristmill.training.gate import promote
from gristmill.training.splits import fitted_split

pytestmark = pytest.mark.slow

NUMBERS = ["bill_length_mm", "bill_depth_mm", "flipper_length_mm"]
HEAVY = {"name": "heavy", "expr": "body_mass_g > 4200"}
STEPS: list[dict[str, Any]] = [
    {"impute": {"columns": NUMBERS, "strategy": "median"}},
    {"impute": {"columns": ["sex"], "strategy": "most_frequent"}},
    {"one_hot": {"columns": ["species", "island", "sex"]}},
    {"standardize": {"columns": NUMBERS}},
    {"drop": {"columns": ["year"]}},
]


@pytest.fixture
async def services(tmp_path: Path) -> AsyncIterator[Services]:
    load_penguins().to_csv(tmp_path / "penguins.csv", index=False)
    settings = load_settings(
        overrides={"home": str(tmp_path / ".gristmill"), "executor": {"backend": "inline"}}
    )
    async with open_services(settings) as opened:
        yield opened


def spec_of(folder: Path, candidate: dict[str, Any] | None = None, **section: Any) -> Any:
    return parse_spec(
        {
            "name": "birds",
            "sources": {"penguins": {"format": "csv", "path": str(folder / "penguins.csv")}},
            "features": {
                "birds": {"from": ["penguins"], "label": HEAVY, "steps": STEPS, **section}
            },
            "split": {"strategy": "random", "test_size": 0.3, "seed": 7},
            "train": {
                "candidates": [candidate or {"name": "logreg", "algorithm": "logistic_regression"}]
            },
            "evaluate": {"metric": "accuracy", "evaluators": ["f1"]},
        }
    )


async def run(services: Services, spec: Any) -> RunReport:
    report = await run_pipeline(spec, services, timeout=300)
    assert report.run.status == "succeeded", report.run.summary
    return report


def baseline() -> tuple[float, float]:
    """The task by hand: the seeded permutation the random split documents, the steps and
    the model fitted on the weighed training rows only (a row without a label is fitted on
    by nothing)."""
    frame = load_penguins()
    heavy = frame["body_mass_g"].gt(4200).where(frame["body_mass_g"].notna())
    order = np.random.default_rng(7).permutation(len(frame))
    test_count = round(0.3 * len(frame))
    train_rows = np.sort(order[: len(frame) - test_count])
    test_rows = np.sort(order[len(frame) - test_count :])
    labelled_train = train_rows[heavy[train_rows].notna().to_numpy()]
    numbers = SimpleImputer(strategy="median").fit(frame.loc[labelled_train, NUMBERS])
    sex = SimpleImputer(strategy="most_frequent").fit(frame.loc[labelled_train, ["sex"]])
    kinds = ["species", "island", "sex"]

    def imputed(rows: np.ndarray) -> pd.DataFrame:
        part = frame.loc[rows].copy()
        part[NUMBERS] = numbers.transform(part[NUMBERS])
        part["sex"] = sex.transform(part[["sex"]]).ravel()
        return part

    encoder = OneHotEncoder(handle_unknown="ignore", sparse_output=False)
    encoder.fit(imputed(labelled_train)[kinds])
    scaler = StandardScaler().fit(imputed(labelled_train)[NUMBERS])

    def features(rows: np.ndarray) -> np.ndarray:
        part = imputed(rows)
        return np.hstack([scaler.transform(part[NUMBERS]), encoder.transform(part[kinds])])

    labelled_test = test_rows[heavy[test_rows].notna().to_numpy()]
    y_train = heavy[labelled_train].astype(bool)
    y_test = heavy[labelled_test].astype(bool)
    model = LogisticRegression(max_iter=1000).fit(features(labelled_train), y_train)
    predicted = model.predict(features(labelled_test))
    return accuracy_score(y_test, predicted), f1_score(y_test, predicted)


def leaderboard(report: RunReport) -> dict[str, Any]:
    (evaluated,) = report.of_type(MODEL_EVALUATED)
    return dict(evaluated.payload)


async def test_a_derived_label_matches_its_baseline_and_is_never_an_input(
    services: Services, tmp_path: Path
) -> None:
    report = await run(services, spec_of(tmp_path))
    board = leaderboard(report)
    metrics = board["leaderboard"][0]["metrics"]
    accuracy, f1 = baseline()
    assert metrics["accuracy"] == pytest.approx(accuracy)
    assert metrics["f1"] == pytest.approx(f1)

    (generated,) = report.of_type(FEATURES_GENERATED)
    assert generated.payload["label"] == {
        "name": "heavy", "missing": "drop", "unlabelled": 2, "expr": "body_mass_g > 4200",
    }  # fmt: skip
    fs = services.metadata.feature_sets.get_feature_set(generated.payload["feature_set_id"])
    assert fs.label == "heavy" and fs.row_count == 344  # the unweighed rows stay in the set …
    split = fitted_split(spec_of(tmp_path), fs, services.feature_stores())
    assert sum(split.manifest.sizes.values()) == 342  # … and in no subset
    fitted = load_pipeline(services.feature_stores(), fs)
    assert "body_mass_g" not in fitted.inputs and "body_mass_g" not in fitted.feature_names

    promote(services.metadata, board["best"], "birds")
    servable = load_servable(services.feature_stores(), "birds")
    names = {c.name for c in servable.manifest.inputs}
    assert "heavy" not in names and "body_mass_g" not in names
    assert {"bill_length_mm", "species", "island", "sex"} <= names
    rows = load_penguins().drop(columns=["body_mass_g"]).head(6)
    answer = servable.predict({n: rows[n].to_numpy() for n in names})
    assert len(answer.values) == 6 and set(answer.values) <= {True, False}


async def test_the_gate_labels_the_raw_test_rows_the_same_way(
    services: Services, tmp_path: Path
) -> None:
    first = leaderboard(await run(services, spec_of(tmp_path)))
    promote(services.metadata, first["best"], "birds")
    weaker = {"name": "weak", "algorithm": "logistic_regression", "params": {"C": 0.01}}
    gate = leaderboard(await run(services, spec_of(tmp_path, weaker)))["gate"]
    production = gate["production"]
    assert production["comparison"] == "rescored", production["note"]
    assert production["value"] == pytest.approx(first["leaderboard"][0]["metrics"]["accuracy"])


async def test_a_derive_step_named_as_the_label_and_a_stratified_split(
    services: Services, tmp_path: Path
) -> None:
    spec = spec_of(tmp_path, label="heavy", steps=[{"derive": HEAVY}, *STEPS]).model_copy(
        update={"split": parse_spec(_split("stratified")).split}
    )
    report = await run(services, spec)
    (generated,) = report.of_type(FEATURES_GENERATED)
    assert generated.payload["label"]["unlabelled"] == 2
    fs = services.metadata.feature_sets.get_feature_set(generated.payload["feature_set_id"])
    split = fitted_split(spec, fs, services.feature_stores())
    shares = {
        s: float(np.mean(split.table(s).column("heavy").to_pylist())) for s in ("train", "test")
    }
    assert shares["train"] == pytest.approx(shares["test"], abs=0.02)
    assert not [w for w in split.warnings if w.kind == "imbalance"]


async def test_rows_without_a_label_refuse_the_set_when_told(
    services: Services, tmp_path: Path
) -> None:
    spec = spec_of(tmp_path, label={**HEAVY, "missing": "error"})
    report = await run_pipeline(spec, services, timeout=300)
    assert report.run.status == "partial"  # ingested, not prepared
    (failed,) = report.of_type(STAGE_FAILED)
    error = failed.payload["error"]
    assert "feature set 'birds': 2 of 344 rows have no label 'heavy'" in error
    assert "(label.missing is error)" in error
    assert "set label.missing: drop" in error


def _split(strategy: str) -> dict[str, Any]:
    return {
        "name": "x",
        "sources": {"s": {"format": "csv", "path": "s.csv"}},
        "split": {"strategy": strategy, "test_size": 0.3, "seed": 7},
    }
