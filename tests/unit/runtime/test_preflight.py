"""The checks before any data moves report every problem of the spec at once."""

from __future__ import annotations

import pytest

from gristmill.config.spec import parse_spec
from gristmill.errors import ConfigError, SpecError
from gristmill.stages.spec_checks import preflight


def spec(**sections: object) -> object:
    base = {
        "name": "p",
        "sources": {"s": {"format": "csv", "path": "a.csv"}},
        "features": {
            "f": {"from": ["s"], "label": "y", "steps": [{"standardise": {"columns": ["x"]}}]}
        },
        "train": {
            "candidates": [
                {"name": "a", "algorithm": "random_forrest"},
                {"name": "b", "algorithm": "linear_regression"},
            ]
        },
        "evaluate": {"metric": "acuracy"},
    }
    return parse_spec(base | sections)


def test_every_problem_is_reported_in_one_round() -> None:
    with pytest.raises(SpecError) as info:
        preflight(spec())  # type: ignore[arg-type]
    paths = [path for path, _ in info.value.problems]
    assert paths == ["features.f.steps[0] (standardise)", "evaluate", "train.candidates.a"]
    text = str(info.value)
    assert text.startswith("the spec has 3 problems:")
    assert "no feature step named 'standardise'" in text
    assert "no metric named 'acuracy'" in text
    assert "no algorithm named 'random_forrest'" in text


def test_one_problem_is_raised_as_it_is() -> None:
    fine = {"candidates": [{"name": "b", "algorithm": "linear_regression"}]}
    with pytest.raises(ConfigError) as info:
        preflight(spec(train=fine, evaluate={"metric": "rmse"}))  # type: ignore[arg-type]
    assert not isinstance(info.value, SpecError)
    assert str(info.value).startswith("features.f.steps[0] (standardise): no feature step named")
