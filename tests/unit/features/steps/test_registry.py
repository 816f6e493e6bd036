"""The step registry: names, options, custom steps by import path; the step conventions."""

from __future__ import annotations

import pandas as pd
import pytest
from sklearn.base import clone

from gristmill.errors import ConfigError, DataError, EmptyInputError
from gristmill.features.steps import STEPS, CustomStep, FeatureStep, make_step, step_names

REQUIRED = {
    "impute", "standardize", "scale", "one_hot", "ordinal", "bucketize", "log", "power",
    "date_parts", "text_stats", "derive", "filter", "drop",
}  # fmt: skip


def test_every_required_step_is_registered_with_its_kind() -> None:
    assert set(step_names()) >= REQUIRED
    kinds = {name: STEPS[name].kind for name in STEPS}
    assert kinds["date_parts"] == kinds["derive"] == kinds["text_stats"] == "extract"
    assert kinds["impute"] == kinds["one_hot"] == kinds["power"] == "transform"
    assert kinds["filter"] == kinds["drop"] == "select"


def test_an_unknown_step_lists_the_known_ones() -> None:
    with pytest.raises(ConfigError) as info:
        make_step("imput", {"columns": ["a"]})
    message = str(info.value)
    assert message.startswith("no feature step named 'imput' (did you mean 'impute'?); known: ")
    assert "bucketize, date_parts, derive" in message


def test_an_unknown_option_names_the_step_and_option() -> None:
    with pytest.raises(ConfigError, match=r"step 'impute' has no option 'strtegy'; its options: "):
        make_step("impute", {"columns": ["a"], "strtegy": "mean"})


def test_a_missing_option_is_named() -> None:
    with pytest.raises(ConfigError, match="step 'standardize' needs option 'columns'"):
        make_step("standardize", {})


@pytest.mark.parametrize(
    ("name", "options", "message"),
    [
        ("impute", {"columns": ["a"], "strategy": "avg"}, "option 'strategy' must be one of mean"),
        ("scale", {"columns": ["a"], "method": "zscore"}, "option 'method' must be one of"),
        ("one_hot", {"columns": []}, "option 'columns' must be a non-empty list"),
        ("one_hot", {"columns": ["a", "a"]}, "names a column twice"),
        ("bucketize", {"columns": ["a"], "bins": 1}, "'bucketize' has an invalid option"),
        ("power", {"columns": ["a"], "method": "log"}, "must be one of yeo-johnson, box-cox"),
        ("drop", {"columns": [1]}, "list of column names"),
    ],
)
def test_invalid_option_values_are_config_errors(
    name: str, options: dict[str, object], message: str
) -> None:
    with pytest.raises(ConfigError, match=message):
        make_step(name, options)


def test_a_single_column_may_be_given_as_text() -> None:
    assert make_step("log", {"columns": "x"}).get_params()["columns"] == ["x"]


def test_steps_follow_scikit_learn_conventions(penguins: pd.DataFrame) -> None:
    step = make_step("impute", {"columns": ["body_mass_g"], "strategy": "median"})
    assert repr(step) == "Impute(columns=['body_mass_g'], strategy='median')"
    copy = clone(step)
    assert copy is not step and copy.get_params() == step.get_params()
    copy.fit(penguins)
    assert not hasattr(step, "estimator_")  # fitting a clone leaves the template alone
    assert step.describe()["learned"] == {}


def test_a_step_is_fitted_before_use(penguins: pd.DataFrame) -> None:
    with pytest.raises(ConfigError, match="before it was fitted"):
        make_step("log", {"columns": ["year"]}).transform(penguins)


def test_a_missing_column_is_named_with_the_available_ones(penguins: pd.DataFrame) -> None:
    with pytest.raises(DataError) as info:
        make_step("impute", {"columns": ["bill_length"]}).fit(penguins)
    assert str(info.value).startswith(
        "step 'impute' needs column 'bill_length', which the data does not have; "
        "available: species, island, bill_length_mm"
    )
    assert info.value.column == "bill_length"


def test_empty_and_non_frame_input(penguins: pd.DataFrame) -> None:
    step = make_step("standardize", {"columns": ["year"]})
    with pytest.raises(EmptyInputError, match="step 'standardize' got no rows"):
        step.fit(penguins.head(0))
    with pytest.raises(DataError, match="takes a pandas DataFrame, not ndarray"):
        step.fit(penguins.to_numpy())


def test_a_scikit_learn_transformer_by_import_path(wine: pd.DataFrame) -> None:
    for path in (
        "sklearn.preprocessing:QuantileTransformer",
        "sklearn.preprocessing.QuantileTransformer",
    ):
        step = make_step(path, {"columns": ["proline"], "n_quantiles": 10})
        assert isinstance(step, CustomStep)
        out = step.fit(wine).transform(wine)
        assert out["proline"].between(0, 1).all()
        assert list(out.columns) == list(wine.columns)


def test_a_feature_step_subclass_by_import_path(penguins: pd.DataFrame) -> None:
    step = make_step("gristmill.features.steps.transforms:Log", {"columns": ["year"]})
    assert isinstance(step, FeatureStep) and not isinstance(step, CustomStep)


@pytest.mark.parametrize(
    ("path", "options", "message"),
    [
        ("nopkg.module:Thing", {}, "cannot import feature step 'nopkg.module:Thing'"),
        ("sklearn.preprocessing:Nope", {}, "module 'sklearn.preprocessing' has no 'Nope'"),
        ("json:dumps", {}, "is not a transformer"),
        ("sklearn.preprocessing:StandardScaler", {}, "needs option 'columns'"),
        ("sklearn.preprocessing:StandardScaler", {"columns": ["a"], "bad": 1}, "bad"),
    ],
)
def test_custom_step_errors(path: str, options: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        make_step(path, options)
