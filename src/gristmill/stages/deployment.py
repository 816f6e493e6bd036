"""The deployment stage: ``model.evaluated`` → ``model.deployed``, by the spec's ``deploy:``.

A spec without a ``deploy:`` section deploys nothing (as a spec without ``train:`` trains
nothing); with one:

* ``policy: gated`` (the default): the gate's winner is deployed when the gate passed.
* ``policy: always``: the best candidate is deployed whatever the gate said (unless it is
  the champion already).
* ``policy: manual``: nothing is deployed; the execution's summary says how to do it.
* ``canary: SHARE`` (or ``policy: canary``, a share of 0.1): the winner starts as a canary
  answering that share of requests beside the champion, instead of replacing it. With
  ``canary_requests`` and/or ``canary_minutes`` the canary carries that promotion rule and
  the canary judge of the prediction servers promotes it once it has run so long without
  errors, or pulls it at its first error (``training.canary``); without either it waits for
  a person (``gristmill deploy MODEL VERSION``). A model with no champion yet has nothing
  to run a canary beside: its first version becomes the primary.

With a ``monitor.rollback`` section the policy written carries its rollback rule
(``training.rollback``: the prediction servers demote a version that crosses it); without
one the policy keeps the rule it had.

Deploying registers the candidate as the model's next version (a candidate registered
before keeps its version) and changes the traffic policy (``training.deployment.deploy``),
which also moves ``@champion`` / ``@previous``. Both are idempotent — the registry returns
a candidate's existing version, and a policy that routes as the stored one is not a new
revision — and every write runs under the execution's fence, so a redelivered
``model.evaluated`` makes neither a second version nor a second revision.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from gristmill.config.spec import DeploySpec, PipelineSpec
from gristmill.core.events import MODEL_DEPLOYED, MODEL_EVALUATED, Event
from gristmill.core.ids import digest_json
from gristmill.core.quality_metrics import QUALITY_METRICS
from gristmill.features.stores import FeatureStores
from gristmill.monitoring.reference import reference_at_registration
from gristmill.servables.loading import compile_for_serving
from gristmill.stages.base import Announcement, StageOutcome
from gristmill.stages.specs import SpecResolver
from gristmill.stores.models import effective_policy
from gristmill.stores.rollback_rules import RollbackRule
from gristmill.training.deployment import DeployMode, PromotionRule, announcement, deploy
from gristmill.training.gate import model_name, register_candidate
from gristmill.training.rollback import rule_from_spec

ACTOR = "gristmill:deployment"


def withheld(section: DeploySpec | None, gate: dict[str, Any], best: str | None) -> str:
    """Why the best candidate is not deployed ('' when it is)."""
    if section is None:
        hint = f": gristmill promote {best}" if best else ""
        return f"the spec has no deploy: section; nothing deployed{hint}"
    if best is None:
        return "no candidate was trained; nothing to deploy"
    if section.policy == "manual":
        return (
            f"deploy.policy is manual: nothing deployed; to deploy the best candidate: "
            f"gristmill promote {best}"
        )
    if gate.get("passed"):
        return ""
    production = gate.get("production") or {}
    if section.policy == "always" and production.get("candidate_id") != best:
        return ""
    return f"the gate did not pass: {gate.get('reason', 'no reason recorded')}"


def spec_rollback_rule(spec: PipelineSpec) -> RollbackRule | None:
    """The rollback rule of the spec's ``monitor.rollback`` (``None``: it has none, and the
    policy keeps the rule it had). A quality drop without ``quality_metric`` is judged on
    ``evaluate.metric`` when live quality measures it (else the first live metric the
    window and the version's evaluation both have)."""
    monitor = spec.monitor
    if monitor is None or monitor.rollback is None:
        return None
    rule = rule_from_spec(monitor.rollback)
    metric = spec.evaluate.metric if spec.evaluate is not None else None
    unnamed = rule.max_quality_drop is not None and rule.quality_metric is None
    return replace(rule, quality_metric=metric) if unnamed and metric in QUALITY_METRICS else rule


class DeploymentStage:
    name = "deployment"
    consumes = MODEL_EVALUATED

    def __init__(self, stores: FeatureStores, specs: SpecResolver) -> None:
        self.stores = stores
        self.metadata = stores.metadata
        self.specs = specs

    def idempotency_key(self, event: Event) -> str:
        return digest_json({"event": event.id})

    def handle(self, event: Event) -> StageOutcome:
        spec = self.specs(event)
        section = spec.deploy
        gate: dict[str, Any] = event.payload.get("gate") or {}
        best = event.payload.get("best")
        why = withheld(section, gate, None if best is None else str(best))
        if why or section is None:
            return StageOutcome([], summary=why)
        candidate_id = str(best)
        model = str(gate.get("model") or model_name(spec))
        registry = self.metadata.registry
        version, _ = register_candidate(self.metadata, candidate_id, model, actor=ACTOR)
        # compiled before the policy changes: servers then only load it, and a version that
        # cannot be served is never deployed (a ConfigError: the run says why)
        compile_for_serving(self.stores, model, version.version, refused="it is not deployed")
        # what its drift is judged against (a failure is logged; monitoring tries again)
        reference_at_registration(self.stores, version)
        share = section.canary_share()
        live = effective_policy(registry, model)
        mode: DeployMode = "primary"
        if share is not None and live is not None and live.primary != version.version:
            mode = "canary"
        reason = (
            f"deploy.policy {section.policy}"
            + (f", canary {share:g}" if mode == "canary" else "")
            + f": {gate.get('candidate') or candidate_id} from run {event.correlation_id}"
        )
        change = deploy(
            registry,
            model,
            version.version,
            mode=mode,
            share=share or 0.1,
            rule=(
                PromotionRule(section.canary_requests, section.canary_minutes)
                if mode == "canary"
                else None
            ),
            reason=reason,
            actor=ACTOR,
            rollback_rule=spec_rollback_rule(spec),
        )
        payload = announcement(change, version=version.version)
        if not change.changed:  # done before, by a delivery whose record was lost: say the same
            payload["previous"] = change.after.fallback[0] if change.after.fallback else None
            if mode == "primary":
                payload["alias"] = "champion"
        payload |= {
            "mode": mode,
            "candidate_id": candidate_id,
            "policy": section.policy,
            "canary_requests": section.canary_requests,
            "canary_minutes": section.canary_minutes,
        }
        summary = f"{model} version {version.version} deployed as {mode}"
        if mode == "canary":
            summary += f" ({share:.0%} of requests)"
        return StageOutcome([Announcement(MODEL_DEPLOYED, payload, key=model)], summary=summary)
