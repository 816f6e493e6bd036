"""The deployment stage in pipeline runs: gated, canary and manual, and redelivery."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from sklearn.datasets import load_breast_cancer

from gristmill.config.settings import load_settings
from gristmill.config.spec import PipelineSpec, parse_spec
from gristmill.core.events import MODEL_DEPLOYED, MODEL_EVALUATED
from gristmill.runtime.pipeline_run import RunReport, run_pipeline
from gristmill.runtime.wiring import Services, open_services
from gristmill.stages.deployment import DeploymentStage
from gristmill.stages.preparation import run_spec_resolver

STUMP = {"name": "stump", "algorithm": "decision_tree", "params": {"max_depth": 1}}
LOGREG = {"name": "logreg", "algorithm": "logistic_regression", "params": {"C": 0.5}}


@pytest.fixture
async def services(tmp_path: Path) -> AsyncIterator[Services]:
    settings = load_settings(
        overrides={"home": str(tmp_path / "home"), "executor": {"backend": "inline"}}
    )
    async with open_services(settings) as opened:
        yield opened


def cancer(
    folder: Path,
    candidate: dict[str, Any],
    deploy: dict[str, Any] | None,
    **sections: Any,
) -> PipelineSpec:
    data = folder / "cancer.parquet"
    if not data.exists():
        frame = load_breast_cancer(as_frame=True).frame
        frame.columns = [c.replace(" ", "_") for c in frame.columns]
        frame.to_parquet(data, index=False)
    return parse_spec(
        {
            "name": "cancer",
            "sources": {"cancer": {"format": "parquet", "path": str(data)}},
            "features": {"cancer_v1": {"from": ["cancer"], "label": "target", "steps": []}},
            "split": {"strategy": "stratified", "test_size": 0.3, "seed": 7},
            "train": {"candidates": [candidate]},
            "evaluate": {"metric": "roc_auc"},
            **({"deploy": deploy} if deploy is not None else {}),
            **sections,
        }
    )


async def run(services: Services, spec: PipelineSpec) -> RunReport:
    report = await run_pipeline(spec, services, timeout=240)
    assert report.run.status == "succeeded", report.run.summary
    assert "deploy" not in report.skipped_sections
    return report


async def test_gated_deploys_the_winner_and_keeps_the_champion_as_fallback(
    services: Services, tmp_path: Path
) -> None:
    registry = services.metadata.registry
    first = await run(services, cancer(tmp_path, STUMP, {"policy": "gated"}))
    (deployed,) = first.of_type(MODEL_DEPLOYED)
    assert deployed.key == "cancer"
    assert (deployed.payload["version"], deployed.payload["mode"]) == (1, "primary")
    assert (deployed.payload["revision"], deployed.payload["alias"]) == (1, "champion")
    policy = registry.get_policy("cancer")
    assert policy is not None and (policy.primary, policy.changed_by) == (
        1,
        "gristmill:deployment",
    )

    second = await run(services, cancer(tmp_path, LOGREG, {"policy": "gated"}))
    (deployed,) = second.of_type(MODEL_DEPLOYED)
    assert (deployed.payload["version"], deployed.payload["previous"]) == (2, 1)
    policy = registry.get_policy("cancer")
    assert policy is not None and (policy.primary, policy.fallback, policy.revision) == (
        2,
        (1,),
        2,
    )
    champion = registry.find_alias("cancer", "champion")
    assert champion is not None and champion.version == 2

    # The gate holds the same candidate again: it is the champion, nothing is deployed.
    third = await run(services, cancer(tmp_path, LOGREG, {"policy": "gated"}))
    assert third.of_type(MODEL_DEPLOYED) == []
    assert len(registry.list_versions("cancer")) == 2


async def test_a_canary_starts_beside_the_champion(services: Services, tmp_path: Path) -> None:
    deploy = {"canary": 0.2, "canary_requests": 500}
    first = await run(services, cancer(tmp_path, STUMP, deploy))
    (deployed,) = first.of_type(MODEL_DEPLOYED)
    assert deployed.payload["mode"] == "primary"  # nothing to run a canary beside yet
    second = await run(services, cancer(tmp_path, LOGREG, deploy))
    (deployed,) = second.of_type(MODEL_DEPLOYED)
    assert (deployed.payload["mode"], deployed.payload["canary_share"]) == ("canary", 0.2)
    assert deployed.payload["canary_requests"] == 500
    policy = services.metadata.registry.get_policy("cancer")
    assert policy is not None
    assert (policy.primary, policy.canary, policy.canary_share) == (1, 2, 0.2)
    # the canary carries its promotion rule: the servers' canary judge promotes it
    assert (policy.promote_after_requests, policy.promote_after_minutes) == (500, None)
    assert policy.judged and deployed.payload["promote_after_requests"] == 500
    champion = services.metadata.registry.find_alias("cancer", "champion")
    assert champion is not None and champion.version == 1


async def test_the_policy_carries_the_specs_rollback_rule(
    services: Services, tmp_path: Path
) -> None:
    monitor = {"rollback": {"max_miss_rate": 0.05, "on_drift": True, "window": "2m"}}
    first = await run(services, cancer(tmp_path, STUMP, {"policy": "gated"}, monitor=monitor))
    (deployed,) = first.of_type(MODEL_DEPLOYED)
    assert deployed.payload["rollback"]["max_miss_rate"] == 0.05
    policy = services.metadata.registry.get_policy("cancer")
    assert policy is not None and policy.rollback_rule is not None
    rule = policy.rollback_rule
    assert (rule.max_miss_rate, rule.on_drift, rule.window_minutes) == (0.05, True, 2.0)
    assert (rule.min_requests, rule.cooldown_minutes) == (100, 30.0)
    # a later run whose spec has no rule deploys on top, keeping the one stored
    second = await run(services, cancer(tmp_path, LOGREG, {"policy": "gated"}))
    (deployed,) = second.of_type(MODEL_DEPLOYED)
    policy = services.metadata.registry.get_policy("cancer")
    assert policy is not None and (policy.primary, policy.fallback) == (2, (1,))
    assert policy.rollback_rule == rule


@pytest.mark.parametrize("deploy", [{"policy": "manual"}, None])
async def test_manual_records_and_deploys_nothing(
    services: Services, tmp_path: Path, deploy: dict[str, Any] | None
) -> None:
    report = await run(services, cancer(tmp_path, STUMP, deploy))
    assert report.of_type(MODEL_DEPLOYED) == []
    (evaluated,) = report.of_type(MODEL_EVALUATED)
    executions = services.metadata.executions.list_executions(report.run.run_id)
    (execution,) = [e for e in executions if e.input_event_id == evaluated.id]
    assert execution.status == "succeeded"
    assert services.metadata.registry.list_versions() == []
    assert services.metadata.registry.get_policy("cancer") is None


async def test_a_redelivered_evaluation_changes_nothing(services: Services, tmp_path: Path) -> None:
    spec = cancer(tmp_path, STUMP, {"policy": "gated"})
    report = await run(services, spec)
    (evaluated,) = report.of_type(MODEL_EVALUATED)
    (deployed,) = report.of_type(MODEL_DEPLOYED)
    audit_before = services.metadata.audit.list_entries(subject="model:cancer")
    # As if the execution's record was lost after its effects: the handler runs again.
    stage = DeploymentStage(services.feature_stores(), run_spec_resolver(services.metadata, spec))
    again = stage.handle(evaluated)
    (announcement,) = again.announcements
    assert announcement.payload == deployed.payload
    assert len(services.metadata.registry.list_versions("cancer")) == 1
    policy = services.metadata.registry.get_policy("cancer")
    assert policy is not None and policy.revision == 1
    assert services.metadata.audit.list_entries(subject="model:cancer") == audit_before
