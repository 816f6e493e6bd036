"""The gate's arithmetic and decisions: direction, absolute and relative margins, no champion,
the champion itself, a champion that cannot be measured."""

from __future__ import annotations

from typing import Any

import pytest

from gristmill.config.spec import parse_spec
from gristmill.errors import SpecError
from gristmill.stores.models import ModelVersion
from gristmill.testing.metadata_records import at, make_candidate
from gristmill.training.gate import Margins, Measured, compare, decide, enough_rows, model_name


def champion(candidate_id: str = "c-old", version: int = 3) -> ModelVersion:
    return ModelVersion("churn", version, candidate_id, at(0), metrics={"roc_auc": 0.8})


def best(value: Any, metric: str = "roc_auc", candidate_id: str = "c-new") -> Any:
    return make_candidate(candidate_id, name="forest", metrics={metric: value})


# -- compare ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("candidate", "champ", "higher", "gain"),
    [
        (0.9, 0.8, True, 0.1),
        (0.7, 0.8, True, -0.1),
        (1.5, 2.0, False, 0.5),
        (2.5, 2.0, False, -0.5),
    ],
)
def test_gain_follows_the_metric_direction(
    candidate: float, champ: float, higher: bool, gain: float
) -> None:
    outcome = compare(candidate, champ, higher=higher, margins=Margins())
    assert outcome.gain == pytest.approx(gain)
    assert outcome.relative_gain == pytest.approx(gain / champ)
    assert outcome.passed is (gain > 0)


def test_a_tie_or_worse_never_passes_even_without_margins() -> None:
    for value in (0.8, 0.79):
        outcome = compare(value, 0.8, higher=True, margins=Margins())
        assert not outcome.passed
        assert outcome.shortfall == "it is not better than the champion"


@pytest.mark.parametrize(
    ("candidate", "margin", "passed"),
    [(0.82, 0.01, True), (0.805, 0.01, False), (0.81, 0.01, True), (0.3, 0.1, True)],
)
def test_the_absolute_margin(candidate: float, margin: float, passed: bool) -> None:
    champ = 0.2 if candidate == 0.3 else 0.8  # 0.3 - 0.2 is 0.0999…: float noise still meets 0.1
    outcome = compare(candidate, champ, higher=True, margins=Margins(absolute=margin))
    assert outcome.passed is passed
    assert ("below min_improvement" in outcome.shortfall) is not passed


def test_the_absolute_margin_for_a_lower_is_better_metric() -> None:
    margins = Margins(absolute=0.5)
    assert compare(9.4, 10.0, higher=False, margins=margins).passed
    failed = compare(9.6, 10.0, higher=False, margins=margins)
    assert not failed.passed and "gain 0.4 is below min_improvement 0.5" in failed.shortfall


@pytest.mark.parametrize(
    ("candidate", "champ", "higher", "passed"),
    [
        (0.81, 0.80, True, True),  # +1.25 %
        (0.804, 0.80, True, False),  # +0.5 %
        (9.8, 10.0, False, True),  # 2 % lower error
        (9.95, 10.0, False, False),  # 0.5 % lower error
    ],
)
def test_the_relative_margin(candidate: float, champ: float, higher: bool, passed: bool) -> None:
    outcome = compare(candidate, champ, higher=higher, margins=Margins(relative=0.01))
    assert outcome.passed is passed
    if not passed:
        assert "below min_relative_improvement 1.00%" in outcome.shortfall


def test_both_margins_must_hold() -> None:
    outcome = compare(0.9, 0.8, higher=True, margins=Margins(absolute=0.2, relative=0.5))
    assert not outcome.passed
    assert (
        "min_improvement" in outcome.shortfall and "min_relative_improvement" in outcome.shortfall
    )


def test_a_champion_at_zero_has_no_relative_gain_and_any_gain_meets_it() -> None:
    outcome = compare(0.1, 0.0, higher=True, margins=Margins(relative=0.5))
    assert outcome.relative_gain is None and outcome.passed


# -- decide ----------------------------------------------------------------------------


def test_no_candidate_means_nothing_deploys() -> None:
    decision = decide("churn", "roc_auc", None, champion(), None, Margins())
    assert not decision["passed"] and "no candidate trained" in decision["reason"]


def test_with_no_champion_the_best_passes() -> None:
    decision = decide("churn", "roc_auc", best(0.7), None, None, Margins(absolute=0.5))
    assert decision["passed"]
    assert decision["production"] is None
    assert (decision["candidate"], decision["candidate_id"], decision["value"]) == (
        "forest",
        "c-new",
        0.7,
    )
    assert "no model 'churn' in production yet (no churn@champion)" in decision["reason"]


def test_the_champion_itself_does_not_pass() -> None:
    decision = decide(
        "churn", "roc_auc", best(0.9, candidate_id="c-old"), champion(), None, Margins()
    )
    assert not decision["passed"]
    assert decision["production"]["version"] == 3
    assert "forest is churn version 3 (champion) already" in decision["reason"]


def test_a_better_candidate_passes_and_the_decision_says_why() -> None:
    measured = Measured(0.8, "rescored")
    margins = Margins(absolute=0.05, relative=0.05)
    decision = decide("churn", "roc_auc", best(0.9), champion(), measured, margins)
    assert decision["passed"]
    assert decision["production"] == {
        "version": 3,
        "alias": "champion",
        "candidate_id": "c-old",
        "value": 0.8,
        "comparison": "rescored",
        "note": "",
    }
    assert decision["improvement"] == pytest.approx(0.1)
    assert decision["relative_improvement"] == pytest.approx(0.125)
    assert (decision["min_improvement"], decision["min_relative_improvement"]) == (0.05, 0.05)
    assert decision["higher_is_better"] is True
    assert decision["reason"].startswith("forest beats churn version 3 (champion) on roc_auc")
    assert "0.9 vs 0.8 (+0.1, +12.50%)" in decision["reason"]
    assert (
        "both scored on the same test rows of this split, the champion through its own"
        in (decision["reason"])
    )


def test_a_lower_error_is_better() -> None:
    measured = Measured(10.0, "rescored")
    decision = decide("churn", "rmse", best(9.0, "rmse"), champion(), measured, Margins())
    assert decision["passed"] and decision["higher_is_better"] is False
    assert decision["improvement"] == pytest.approx(1.0)
    worse = decide("churn", "rmse", best(11.0, "rmse"), champion(), measured, Margins())
    assert not worse["passed"] and worse["improvement"] == pytest.approx(-1.0)
    assert "does not replace churn version 3" in worse["reason"]
    assert "not better than the champion" in worse["reason"]


def test_a_recorded_champion_value_is_flagged() -> None:
    measured = Measured(0.8, "recorded", "a forecaster forecasts from the end of its own")
    decision = decide("churn", "roc_auc", best(0.85), champion(), measured, Margins(absolute=0.1))
    assert not decision["passed"]
    assert decision["production"]["comparison"] == "recorded"
    assert (
        "the recorded one, from its own test subset, not re-scored: a forecaster"
        in decision["reason"]
    )
    assert "below min_improvement 0.1" in decision["reason"]


def test_a_champion_without_a_value_cannot_be_beaten_automatically() -> None:
    measured = Measured(None, "recorded", "its model cannot be loaded")
    decision = decide("churn", "f1", best(0.9, "f1"), champion(), measured, Margins())
    assert not decision["passed"]
    assert "has no f1 value to compare with (its model cannot be loaded)" in decision["reason"]
    assert "gristmill promote c-new" in decision["reason"]


def test_a_best_candidate_without_a_value_does_not_pass() -> None:
    decision = decide(
        "churn", "roc_auc", best(None), champion(), Measured(0.8, "rescored"), Margins()
    )
    assert not decision["passed"] and "forest has no roc_auc value" in decision["reason"]


# -- the deploy section ----------------------------------------------------------------


def spec(**deploy: Any) -> dict[str, Any]:
    return {
        "name": "churn",
        "sources": {"customers": {"format": "csv", "path": "c.csv"}},
        **({"deploy": deploy} if deploy else {}),
    }


def test_the_model_is_named_by_deploy_model_else_the_spec_name() -> None:
    assert model_name(parse_spec(spec())) == "churn"
    assert model_name(parse_spec(spec(min_improvement=0.01))) == "churn"
    assert model_name(parse_spec(spec(model="churn_model"))) == "churn_model"
    parsed = parse_spec(spec(min_improvement=0.01, min_relative_improvement=0.02))
    assert parsed.deploy is not None
    assert (parsed.deploy.min_improvement, parsed.deploy.min_relative_improvement) == (0.01, 0.02)


@pytest.mark.parametrize(
    ("deploy", "path"),
    [
        ({"min_improvement": -0.1}, "deploy.min_improvement"),
        ({"min_relative_improvement": -1}, "deploy.min_relative_improvement"),
        ({"model": "my model"}, "deploy.model"),
    ],
)
def test_bad_deploy_settings_are_named(deploy: dict[str, Any], path: str) -> None:
    with pytest.raises(SpecError, match=path):
        parse_spec(spec(**deploy))


def test_a_pass_on_too_few_test_rows_is_no_promotion() -> None:
    passed = decide("churn", "roc_auc", best(0.9), None, None, Margins())
    assert passed["passed"] is True
    # before: a candidate measured on 12 test rows was deployed automatically
    small = enough_rows(passed, 12, 30)
    assert small["passed"] is False and (small["test_rows"], small["min_test_rows"]) == (12, 30)
    assert "the test subset has 12 rows, fewer than deploy.min_test_rows (30)" in small["reason"]
    assert "lower deploy.min_test_rows (e.g. min_test_rows: 12)" in small["reason"]
    assert small["gate_reason"] == passed["reason"]
    assert enough_rows(passed, 12, 12)["passed"] is True  # lowered: the gate decides
    refused = decide(
        "churn", "roc_auc", best(0.7), champion(), Measured(0.8, "rescored"), Margins()
    )
    assert enough_rows(refused, 5, 30)["reason"] == refused["reason"]  # its own reason stands
