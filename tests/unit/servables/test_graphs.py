"""Each built-in step's ONNX form answers as the step itself does, on awkward values too
(gaps in numbers and text, unknown categories, negative numbers, values out of range), and what
has no ONNX form says why."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pytest
from palmerpenguins import load_penguins

from gristmill.config.features import SelectSpec
from gristmill.errors import DataError
from gristmill.features.pipeline import FeaturePipeline
from gristmill.features.steps import make_step
from gristmill.learners.registry import make_learner
from gristmill.servables.learner_graph import learner_graph
from gristmill.servables.onnx_graphs import _joined_graph, onnx_graphs
from gristmill.servables.onnx_servable import OnnxServable
from gristmill.servables.packed import PACKED_INPUT
from gristmill.servables.port import NumericColumns
from gristmill.servables.schema import raw_types
from gristmill.servables.unconvertible import NotConvertible
from gristmill.testing.servables import servable_of
from gristmill.training.bundle import Scorer

NUMBERS = ["bill_length_mm", "bill_depth_mm", "flipper_length_mm", "body_mass_g"]


def _penguins() -> pd.DataFrame:
    frame = load_penguins()
    return frame[frame["species"].notna()].reset_index(drop=True)


def _scorer(steps: list[dict[str, Any]], select: SelectSpec | None = None) -> Scorer:
    frame = _penguins()
    pipeline = FeaturePipeline(
        tuple(make_step(*next(iter(s.items()))) for s in steps), label="species", select=select
    ).fit(frame)
    features = pipeline.transform(frame)
    names = pipeline.feature_names
    learner = make_learner("logistic_regression", {"max_iter": 2000}).fit(
        features[names], frame["species"].loc[features.index]
    )
    return Scorer(learner, pipeline, names)


def _servable(scorer: Scorer) -> OnnxServable:
    return servable_of(scorer)


def _awkward() -> pd.DataFrame:
    rows = _penguins().head(6).copy()
    rows.loc[0, "bill_length_mm"] = np.nan
    rows.loc[1, "sex"] = None
    rows.loc[2, "island"] = "Atlantis"  # a category never seen
    rows.loc[3, "bill_depth_mm"] = 0.5  # a ratio far outside the fitted range (clipped)
    rows.loc[4, "body_mass_g"] = -2500.0  # negative: power and mod on the other branch
    rows.loc[5, "year"] = 2031  # an ordinal never seen
    return rows


def _agrees(scorer: Scorer, rows: pd.DataFrame) -> None:
    servable = _servable(scorer)
    answer = servable.predict({c.name: rows[c.name].to_numpy() for c in servable.manifest.inputs})
    features = scorer.features(rows)
    assert np.array_equal(answer.values, scorer.learner.predict(features).to_numpy())
    native = scorer.learner.predict_proba(features).to_numpy()
    assert answer.probabilities is not None
    assert np.abs(answer.probabilities - native).max() < 1e-9


STEPS: list[list[dict[str, Any]]] = [
    [
        {"impute": {"columns": NUMBERS, "strategy": "median"}},
        {"impute": {"columns": ["sex"], "strategy": "most_frequent"}},
        {"one_hot": {"columns": ["island", "sex"]}},
        {"standardize": {"columns": NUMBERS}},
        {"drop": {"columns": ["year"]}},
    ],
    [
        {"impute": {"columns": NUMBERS, "strategy": "constant", "fill_value": 1.0}},
        {"derive": {"name": "ratio", "expr": "bill_length_mm / bill_depth_mm"}},
        {"derive": {"name": "mod", "expr": "(body_mass_g // 7) % 3 - abs(-2) ** 2"}},
        {"derive": {"name": "fn", "expr": "sqrt(abs(flipper_length_mm)) + log1p(1) + floor(2.5)"}},
        {"derive": {"name": "flag", "expr": "island in ['Dream', 'Biscoe'] or sex != 'male'"}},
        {"derive": {"name": "band", "expr": "180 < flipper_length_mm <= 200 and not year == 2008"}},
        {"scale": {"columns": ["ratio"], "method": "minmax", "clip": True}},
        {"drop": {"columns": ["island", "sex", "year"]}},
    ],
    [
        {"impute": {"columns": NUMBERS, "strategy": "mean"}},
        {"ordinal": {"columns": ["island", "year"]}},
        {"one_hot": {"columns": ["sex"], "drop": "if_binary"}},
        {"bucketize": {"columns": ["flipper_length_mm"], "edges": [190, 210]}},
        {"bucketize": {"columns": ["bill_depth_mm"], "bins": 4}},
        {"power": {"columns": ["body_mass_g"], "method": "yeo-johnson"}},
        {"log": {"columns": ["bill_length_mm"]}},
        {"scale": {"columns": ["bill_length_mm"], "method": "robust"}},
    ],
]


@pytest.mark.parametrize("steps", STEPS, ids=["encode", "derive", "bins"])
def test_a_step_graph_answers_as_the_steps_do(steps: list[dict[str, Any]]) -> None:
    scorer = _scorer(steps)
    _agrees(scorer, _penguins().sample(60, random_state=0))
    if steps is not STEPS[2]:  # learned bins take no gap (the native step refuses one)
        _agrees(scorer, _awkward())


def test_selection_narrows_the_raw_inputs() -> None:
    scorer = _scorer(
        [
            {"impute": {"columns": NUMBERS, "strategy": "median"}},
            {"one_hot": {"columns": ["island", "sex"]}},
        ],
        SelectSpec(method="list", columns=["bill_length_mm", "island_Dream"]),
    )
    graphs = onnx_graphs(scorer, raw_types(scorer))
    assert sorted(graphs.inputs) == ["bill_length_mm", "island"]
    _agrees(scorer, _penguins().sample(40, random_state=1))


@pytest.mark.parametrize(
    ("step", "reason"),
    [
        ({"filter": {"expr": "body_mass_g > 3000"}}, "step 'filter' has no ONNX form"),
        ({"date_parts": {"columns": ["year"]}}, "ONNX has no date parsing"),
        (
            {"sklearn.preprocessing:QuantileTransformer": {"columns": ["body_mass_g"]}},
            "is a custom step",
        ),
        (
            {"one_hot": {"columns": ["island"], "handle_unknown": "error"}},
            "raises on a new category",
        ),
        ({"derive": {"name": "x", "expr": "arctan2(bill_length_mm, 2)"}}, "'arctan2'"),
    ],
)
def test_what_has_no_onnx_form_says_why(step: dict[str, Any], reason: str) -> None:
    steps = [{"impute": {"columns": NUMBERS, "strategy": "median"}}, step]
    if "one_hot" not in step:
        steps.append({"drop": {"columns": ["island", "sex"]}})
    else:
        steps.append({"drop": {"columns": ["sex"]}})
    if "date_parts" not in step:
        steps.append({"drop": {"columns": ["year"]}})
    scorer = _scorer(steps)
    with pytest.raises(NotConvertible, match=reason):
        onnx_graphs(scorer, raw_types(scorer))


def test_a_forecaster_has_no_onnx_form() -> None:
    series = pd.Series(np.sin(np.arange(60) / 5.0) + 2, name="y")
    learner = make_learner("arima", {"order": [1, 0, 0]}).fit(None, series)
    scorer = Scorer(learner, None, [])
    with pytest.raises(NotConvertible, match=r"learner 'arima' .* has no ONNX form"):
        onnx_graphs(scorer, {})


def test_text_columns_are_typed_as_text() -> None:
    scorer = _scorer(
        [{"impute": {"columns": NUMBERS}}, {"one_hot": {"columns": ["island", "sex"]}}]
    )
    types = raw_types(scorer)
    assert types["island"] == "string" and types["bill_length_mm"] == "float64"
    assert types["year"] == "int64"


NUMERIC_STEPS: list[list[dict[str, Any]]] = [
    [
        {"impute": {"columns": NUMBERS, "strategy": "median"}},
        {"standardize": {"columns": NUMBERS}},
        {"drop": {"columns": ["island", "sex"]}},
    ],
    [
        {"impute": {"columns": NUMBERS, "strategy": "mean"}},
        {"derive": {"name": "ratio", "expr": "bill_length_mm / bill_depth_mm"}},
        {"bucketize": {"columns": ["flipper_length_mm"], "edges": [190, 210]}},
        {"power": {"columns": ["body_mass_g"], "method": "yeo-johnson"}},
        {"scale": {"columns": ["ratio"], "method": "minmax", "clip": True}},
        {"drop": {"columns": ["island", "sex", "year"]}},
    ],
]


@pytest.mark.parametrize("steps", NUMERIC_STEPS, ids=["standardize", "derive-bins"])
def test_numeric_inputs_come_as_one_tensor_and_answer_as_one_per_column(
    steps: list[dict[str, Any]],
) -> None:
    scorer = _scorer(steps)
    servable = _servable(scorer)
    graph_inputs = servable._full.session.get_inputs()
    assert [i.name for i in graph_inputs] == [PACKED_INPUT]
    names = tuple(c.name for c in servable.manifest.inputs)
    assert servable._full.packed == names and graph_inputs[0].shape[1] == len(names)
    rows = pd.concat([_penguins().sample(50, random_state=2), _awkward().head(1)])
    _agrees(scorer, rows)
    # the same scorer built with one input per column answers the same, to the bit
    types = raw_types(scorer)
    per_column = _joined_graph(
        scorer,
        types,
        learner_graph(scorer.learner, len(scorer.feature_names)),
        list(scorer.feature_names),
        packed=(),
    )
    single = OnnxServable(servable.manifest, per_column.SerializeToString(), servable._graphs[1])
    assert single._full.packed is None
    columns = {n: rows[n].to_numpy(dtype=np.float64) for n in names}
    packed, unpacked = servable.predict(columns), single.predict(columns)
    assert np.array_equal(packed.values, unpacked.values)
    assert np.array_equal(packed.probabilities, unpacked.probabilities)  # type: ignore[arg-type]
    # finite numbers read as one block are fed as they are, and answer the same
    finite = rows.dropna(subset=list(names))
    matrix = np.ascontiguousarray(finite[list(names)].to_numpy(dtype=np.float64))
    block = servable.predict(NumericColumns.of_rows(names, matrix))
    loose = servable.predict({n: finite[n].to_numpy(dtype=np.float64) for n in names})
    assert np.array_equal(block.probabilities, loose.probabilities)  # type: ignore[arg-type]
    # a column missing from a dict is named, as with one input per column
    with pytest.raises(DataError, match="column 'body_mass_g' is missing"):
        servable.predict({n: columns[n] for n in names if n != "body_mass_g"})
    # the learner alone takes its features as one tensor too
    features = scorer.features(finite)
    alone = servable.predict_features({f: features[f].to_numpy() for f in scorer.feature_names})
    assert np.abs(alone.probabilities - block.probabilities).max() < 1e-9  # type: ignore[operator]


def test_a_single_numeric_input_keeps_its_own_name() -> None:
    scorer = _scorer(
        [{"impute": {"columns": NUMBERS}}, {"drop": {"columns": ["island", "sex", "year"]}}],
        SelectSpec(method="list", columns=["bill_length_mm"]),
    )
    graphs = onnx_graphs(scorer, raw_types(scorer))
    assert [i.name for i in graphs.full.graph.input] == ["bill_length_mm"]
    _agrees(scorer, _penguins().sample(20, random_state=3))
