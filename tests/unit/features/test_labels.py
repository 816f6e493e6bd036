"""Labels derived by expression, the columns they read, and the label in series steps."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from palmerpenguins import load_penguins
from pydantic import ValidationError
from statsmodels.datasets import co2

from gristmill.config.features import FeatureSetSpec, LabelSpec
from gristmill.errors import ConfigError, DataError
from gristmill.features import serialization
from gristmill.features.labels import label_rows, unlabelled
from gristmill.features.pipeline import FeaturePipeline

HEAVY = {"name": "heavy", "expr": "body_mass_g > 4200"}
NUMBERS = ["bill_length_mm", "bill_depth_mm", "flipper_length_mm"]


def section(**options: Any) -> FeatureSetSpec:
    return FeatureSetSpec.model_validate({"from": ["penguins"], **options})


@pytest.fixture
def penguins() -> pa.Table:
    return pa.Table.from_pandas(load_penguins(), preserve_index=False)


def test_a_label_is_derived_from_the_input_rows(penguins: pa.Table) -> None:
    spec = section(label=HEAVY)
    table = label_rows(spec, penguins)
    mass = load_penguins()["body_mass_g"]
    heavy = table.column("heavy").to_pylist()
    assert heavy == [None if np.isnan(m) else bool(m > 4200) for m in mass]
    assert unlabelled(table, "heavy") == 2  # two penguins were never weighed: no label
    assert table.column_names[-1] == "heavy"
    assert spec.label_column == "heavy"
    assert label_rows(section(label="species"), penguins) is penguins  # a column as it is


def test_a_derive_step_named_as_the_label_is_its_expression(penguins: pa.Table) -> None:
    by_step = section(label="heavy", steps=[{"derive": {"name": "heavy", **HEAVY}}])
    by_label = section(label=HEAVY)
    assert by_step.label_rule() == by_label.label_rule()
    assert by_step.label_source() == "steps[0] (derive)"
    assert label_rows(by_step, penguins).equals(label_rows(by_label, penguins))
    assert FeaturePipeline.from_spec(by_step).steps == ()  # it is no step


def test_a_label_derived_twice_is_refused() -> None:
    with pytest.raises(ValidationError, match=r"derived twice: by label\.expr and by steps"):
        section(label=HEAVY, steps=[{"derive": {"name": "heavy", "expr": "1"}}])


def test_a_label_expression_is_checked_and_its_columns_must_exist(penguins: pa.Table) -> None:
    bad = section(label={"name": "heavy", "expr": "body_mass_g.mean()"})
    with pytest.raises(ConfigError, match=r"features\.p\.label\.expr: step 'label'"):
        FeaturePipeline.from_spec(bad, where="features.p")
    gone = section(label={"name": "late", "expr": "delay > 15"})
    with pytest.raises(DataError, match="derived from column 'delay', which the input rows"):
        label_rows(gone, penguins, where="features.p")


def test_the_columns_a_label_reads_are_no_features_nor_inputs(penguins: pa.Table) -> None:
    spec = section(
        label=HEAVY,
        steps=[
            {"impute": {"columns": NUMBERS, "strategy": "median"}},
            {"drop": {"columns": ["sex"]}},
        ],
    )
    frame = label_rows(spec, penguins).to_pandas()
    fitted = FeaturePipeline.from_spec(spec).fit(frame)
    assert "body_mass_g" not in fitted.inputs and "heavy" not in fitted.inputs
    assert "body_mass_g" not in fitted.feature_names
    rows = load_penguins().drop(columns=["body_mass_g"]).head(5)  # serving: no mass, no label
    assert len(fitted.transform(rows)) == 5
    kept = section(label={**HEAVY, "inputs": "keep"})
    assert "body_mass_g" in FeaturePipeline.from_spec(kept).fit(frame).feature_names


def test_a_step_reading_a_label_input_says_why_it_cannot(penguins: pa.Table) -> None:
    spec = section(label=HEAVY, steps=[{"log": {"columns": ["body_mass_g"]}}])
    with pytest.raises(DataError, match="reads column 'body_mass_g', which the label 'heavy'"):
        FeaturePipeline.from_spec(spec).fit(label_rows(spec, penguins).to_pandas())


def test_only_series_steps_may_name_the_label() -> None:
    with pytest.raises(ConfigError, match=r"steps\[0\] \(impute\): it names the label 'species'"):
        FeaturePipeline.from_spec(
            section(label="species", steps=[{"impute": {"columns": ["species"]}}])
        )
    ahead = section(
        label="co2",
        steps=[
            {"fill_gaps": {"columns": ["co2"], "method": "bfill"}},
            {"lag": {"columns": ["co2"]}},
        ],
    )
    with pytest.raises(ConfigError, match=r"steps\[1\] \(lag\): it reads the label 'co2' after a"):
        FeaturePipeline.from_spec(ahead)


def test_selection_scores_only_the_rows_with_a_label(penguins: pa.Table) -> None:
    spec = section(
        label=HEAVY,
        steps=[
            {"impute": {"columns": NUMBERS, "strategy": "median"}},
            {"drop": {"columns": ["species", "island", "sex"]}},
        ],
        select={"method": "mutual_info", "k": 2},
    )
    fitted = FeaturePipeline.from_spec(spec).fit(label_rows(spec, penguins).to_pandas())
    assert len(fitted.feature_names) == 2


def test_lags_of_the_label_read_its_past_values_only() -> None:
    weeks = co2.load_pandas().data.reset_index(names="week").head(300)
    spec = FeatureSetSpec.model_validate(
        {
            "from": ["co2"],
            "timestamp": "week",
            "label": "co2",
            "steps": [
                {"fill_gaps": {"columns": ["co2"], "method": "ffill", "time": "week"}},
                {"lag": {"columns": ["co2"], "periods": [1, 52], "time": "week"}},
            ],
        }
    )
    fitted = FeaturePipeline.from_spec(spec).fit(weeks)
    assert fitted.label_history and fitted.inputs["co2"] == "float64"  # its past is an input
    out = fitted.transform(weeks)
    filled = weeks["co2"].ffill()
    assert np.allclose(out["co2_lag1"].iloc[1:], filled.shift(1).iloc[1:])
    assert out["co2"].isna().sum() == 0  # the label comes out filled
    future = weeks.tail(60).assign(co2=lambda f: f["co2"].where(f.index < 295))
    served = fitted.transform(future)  # the last 5 weeks to predict: their label unknown
    assert served["co2_lag1"].iloc[-5:].notna().all()
    assert served["co2_lag52"].iloc[-5:].notna().all()
    assert np.allclose(served["co2_lag52"].iloc[-5:], filled.iloc[243:248])
    with pytest.raises(DataError, match="needs column 'co2', the label's past values"):
        fitted.transform(weeks.drop(columns=["co2"]))
    one = fitted.transform_one({"week": weeks["week"].iloc[10], "co2": 999.0})
    assert one is not None and "co2" not in one and np.isnan(one["co2_lag1"])
    again = serialization.loads(serialization.dumps(fitted))
    pd.testing.assert_frame_equal(again.transform(weeks), out)


def test_label_spec_defaults() -> None:
    rule = LabelSpec(name="late", expr="delay > 15")
    assert (rule.missing, rule.inputs) == ("drop", "drop")
    assert section(label="species").label_rule() == LabelSpec(name="species")
    with pytest.raises(ValidationError):
        section(label={"name": "late", "missing": "ignore"})
