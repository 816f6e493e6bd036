"""The step registry: names, options, custom steps by import path; the step conventions."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest
from sklearn.base import clone

from gristmill.config.features import FeatureSetSpec
from gristmill.errors import ConfigError, DataError, EmptyInputError
from gristmill.features.pipeline import FeaturePipeline
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


NOT_ESTIMATORS = '''
from sklearn.base import BaseEstimator, TransformerMixin


class Doubler:
    """fit and transform, but none of scikit-learn's conventions."""

    def __init__(self, factor=2):
        self.factor = factor

    def fit(self, X, y=None):
        return self

    def transform(self, X):
        return X * self.factor


class Renamed(TransformerMixin, BaseEstimator):
    """An estimator whose __init__ changes what it is given: clone refuses it."""

    def __init__(self, factor=2):
        self.factor = float(factor) * 2

    def fit(self, X, y=None):
        return self

    def transform(self, X):
        return X


class Picky(TransformerMixin, BaseEstimator):
    """Checks its option in __init__ (scikit-learn checks in fit) with its own error."""

    def __init__(self, factor=2):
        if factor < 0:
            raise ValueError("factor must not be negative")
        self.factor = factor

    def fit(self, X, y=None):
        return self

    def transform(self, X):
        return X
'''


@pytest.fixture
def not_estimators(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    (tmp_path / "gm_not_estimators.py").write_text(NOT_ESTIMATORS)
    monkeypatch.syspath_prepend(str(tmp_path))
    yield "gm_not_estimators"
    sys.modules.pop("gm_not_estimators", None)


def test_a_transformer_that_is_no_scikit_learn_estimator_is_refused_when_made(
    not_estimators: str,
) -> None:
    with pytest.raises(ConfigError) as info:
        make_step(f"{not_estimators}:Doubler", {"columns": ["a"]})
    message = str(info.value)
    assert message.startswith(
        f"feature step '{not_estimators}:Doubler' is not a scikit-learn estimator: class "
        "Doubler has fit and transform but no get_params or set_params"
    )
    assert "derive it from TransformerMixin and BaseEstimator (sklearn.base)" in message
    assert "__init__ that only stores its keyword arguments" in message


def test_a_transformer_scikit_learn_cannot_copy_is_refused_when_made(
    not_estimators: str,
) -> None:
    with pytest.raises(ConfigError) as info:
        make_step(f"{not_estimators}:Renamed", {"columns": ["a"], "factor": 3})
    message = str(info.value)
    assert message.startswith(f"feature step '{not_estimators}:Renamed' cannot be copied")
    assert "factor" in message and "unchanged and under the same names" in message


def test_a_pipeline_names_the_step_by_its_key_path(not_estimators: str) -> None:
    spec = FeatureSetSpec.model_validate(
        {
            "from": ["s"],
            "steps": [
                {"impute": {"columns": ["a"]}},
                {f"{not_estimators}:Doubler": {"columns": ["a"]}},
            ],
        }
    )
    with pytest.raises(
        ConfigError, match=r"^features\.fs\.steps\[1\] \(gm_not_estimators:Doubler\): "
    ):
        FeaturePipeline.from_spec(spec, where="features.fs")


def test_a_transformer_whose_init_refuses_its_options_is_a_config_error(
    not_estimators: str,
) -> None:
    with pytest.raises(ConfigError) as info:
        make_step(f"{not_estimators}:Picky", {"columns": ["a"], "factor": -1})
    assert str(info.value) == (
        f"step '{not_estimators}:Picky' cannot be made from its options: its __init__ raised "
        "ValueError: factor must not be negative"
    )
