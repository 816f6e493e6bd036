"""The spec's ``score:`` section: one input that exists, the model it defaults to."""

from __future__ import annotations

from typing import Any

import pytest

from gristmill.config.spec import parse_spec
from gristmill.errors import SpecError


def spec(**score: Any) -> dict[str, Any]:
    return {
        "name": "churn",
        "sources": {"customers": {"format": "csv", "path": "c.csv"}},
        "features": {"customers_v1": {"from": ["customers"]}},
        "score": score,
    }


def test_the_model_defaults_to_deploy_model_then_the_pipeline_name() -> None:
    assert parse_spec(spec(source="customers")).scoring_model() == "churn"
    with_deploy = {**spec(source="customers"), "deploy": {"model": "churner"}}
    assert parse_spec(with_deploy).scoring_model() == "churner"
    assert parse_spec(spec(feature_set="customers_v1", model="x@challenger")).scoring_model() == (
        "x@challenger"
    )
    assert parse_spec(spec(source="customers")).skipped_sections() == []


@pytest.mark.parametrize(
    ("score", "message"),
    [
        ({}, "exactly one input"),
        ({"source": "customers", "feature_set": "customers_v1"}, "exactly one input"),
        ({"source": "orders"}, "score.source names 'orders'"),
        ({"feature_set": "v2"}, "score.feature_set names 'v2'"),
        ({"source": "customers", "on": "friday"}, "score.on"),
    ],
)
def test_a_wrong_score_section_names_the_key(score: dict[str, Any], message: str) -> None:
    with pytest.raises(SpecError, match=message.replace("(", r"\(")):
        parse_spec(spec(**score))
