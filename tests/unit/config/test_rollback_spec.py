"""The spec's ``monitor.rollback`` section: durations, checks naming the key path when the
spec is read, and the rule the deployment stage takes from it."""

from __future__ import annotations

import re
from typing import Any

import pytest
from pydantic import ValidationError

from gristmill.config.rollback import RollbackSpec
from gristmill.config.spec import PipelineSpec, parse_spec
from gristmill.errors import SpecError
from gristmill.stages.deployment import spec_rollback_rule
from gristmill.stores.rollback_rules import RollbackRule


def _spec(monitor: dict[str, Any] | None, metric: str | None = None) -> PipelineSpec:
    body: dict[str, Any] = {
        "name": "churn",
        "sources": {"customers": {"format": "csv", "path": "customers.csv"}},
    }
    if monitor is not None:
        body["monitor"] = monitor
    if metric is not None:
        body["evaluate"] = {"metric": metric}
    return parse_spec(body)


def test_durations_and_defaults() -> None:
    spec = RollbackSpec.model_validate({"max_error_rate": 0.01, "window": "10m", "cooldown": "2h"})
    assert (spec.window_minutes, spec.cooldown_minutes, spec.min_requests) == (10, 120, 100)
    assert RollbackSpec(on_drift=True).window_minutes == 5
    assert RollbackSpec(on_drift=True, cooldown=0).cooldown_minutes == 0


@pytest.mark.parametrize(
    ("given", "key", "words"),
    [
        ({"max_miss_rate": 1.5}, "max_miss_rate", "less than or equal to 1"),
        ({"max_miss_rate": 0.1, "window": "soon"}, "window", "is not a duration"),
        ({"max_miss_rate": 0.1, "webhook": "hooks.example"}, "webhook", "http(s) URL"),
        ({"max_miss_rate": 0.1, "max_latency": 1}, "max_latency", "Extra inputs"),
        ({"min_requests": 10}, "", "needs at least one of"),
        (
            {"max_quality_drop": 0.1, "quality_metric": "nosuch"},
            "quality_metric",
            "'nosuch' is not a metric live quality measures; one of: accuracy, f1, roc_auc, "
            "rmse, mae, mape",
        ),
        ({"max_quality_drop": 0.1, "quality_metric": ""}, "quality_metric", "one of: accuracy"),
    ],
)
def test_wrong_values_are_refused_naming_the_key(
    given: dict[str, Any], key: str, words: str
) -> None:
    with pytest.raises(ValidationError, match=re.escape(words)):
        RollbackSpec.model_validate(given)
    with pytest.raises(SpecError) as caught:
        _spec({"rollback": given})
    where = "monitor.rollback" + (f".{key}" if key else "")
    assert f"  {where}: " in str(caught.value)


def test_the_deployment_stage_takes_the_rule_when_there_is_one() -> None:
    assert spec_rollback_rule(_spec(None)) is None
    assert spec_rollback_rule(_spec({"drift": {"method": "psi"}})) is None
    spec = _spec({"rollback": {"max_miss_rate": 0.05, "window": 90}})
    assert spec_rollback_rule(spec) == RollbackRule(max_miss_rate=0.05, window_minutes=1.5)
    assert spec.skipped_sections() == []  # the deployment stage reads it: not skipped


@pytest.mark.parametrize(
    ("evaluate", "given", "judged_on"),
    [
        ("f1", None, "f1"),  # evaluate.metric, which live quality measures
        ("rmse", None, "rmse"),
        ("log_loss", None, None),  # not measured live: the first both have (accuracy, ...)
        (None, None, None),
        ("f1", "accuracy", "accuracy"),  # named: that one
    ],
)
def test_the_quality_metric_defaults_to_evaluate_metric_when_live_quality_has_it(
    evaluate: str | None, given: str | None, judged_on: str | None
) -> None:
    rollback: dict[str, Any] = {"max_quality_drop": 0.05}
    if given is not None:
        rollback["quality_metric"] = given
    rule = spec_rollback_rule(_spec({"rollback": rollback}, evaluate))
    assert rule is not None and rule.quality_metric == judged_on


def test_the_registry_and_the_admin_api_refuse_an_unknown_quality_metric() -> None:
    from gristmill.stores.rollback_rules import rule_problem

    field, said = rule_problem(RollbackRule(max_quality_drop=0.1, quality_metric="nosuch")) or (
        "",
        "",
    )
    assert field == "quality_metric" and "one of: accuracy, f1, roc_auc" in said
    assert rule_problem(RollbackRule(max_quality_drop=0.1, quality_metric="roc_auc")) is None
