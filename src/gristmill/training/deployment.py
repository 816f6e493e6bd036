"""Deploying registered versions: how a traffic policy changes when a version is deployed,
tried as a canary or a shadow, or rolled back, and the registry calls that store it.

A model's live policy is its stored one, else a single policy on ``@champion``
(``effective_policy``). Every change goes through ``ModelRegistry.set_policy``, which keeps
``@champion`` on the primary and ``@previous`` on the first fallback, numbers the revision
and writes the audit entry; a change that leaves the routing as it is stores nothing (so a
redelivered event or a repeated command is not a new revision).

* **deploy** (no flag): the version becomes the primary; the primary it replaces becomes the
  first fallback (``@previous``), older fallbacks follow, at most ``FALLBACK_DEPTH`` in all.
  A canary that *is* the version is thereby promoted (and cleared).
* **canary**: the version answers ``share`` of requests beside the primary; with a
  ``PromotionRule`` the canary judge promotes it once it has run long enough without
  errors, or pulls it at its first error (``training.canary``).
* **shadow**: the version scores every request beside the answer, never answering.
* **rollback**: the first fallback becomes the primary again; the primary that is rolled
  back leaves the policy, and so does any canary. ``canary_only``: only the canary leaves
  (a canary pulled), the primary stays.

Every change starts from the live policy, so it keeps the policy's rollback rule
(``stores.rollback_rules``) unless ``deploy`` is given another.

``expected_revision`` (deploy, rollback) makes the change only if the stored policy is still
at that revision (``ConflictError`` otherwise): a decision taken on a policy someone changed
meanwhile is not applied.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any, Literal

from gristmill.errors import ConfigError, ConflictError, NotFoundError
from gristmill.stores.models import ModelRegistry, TrafficPolicy, effective_policy
from gristmill.stores.rollback_rules import RollbackRule

DeployMode = Literal["primary", "canary", "shadow"]
FALLBACK_DEPTH = 2
"""How many earlier primaries a deployment keeps as fallbacks (each is loaded by servers)."""


@dataclass(frozen=True)
class PromotionRule:
    """How long a canary must run without errors before it is promoted: ``requests`` it
    must answer and/or ``minutes`` it must run (``None``: no such condition)."""

    requests: int | None = None
    minutes: float | None = None

    def __bool__(self) -> bool:
        return self.requests is not None or self.minutes is not None


@dataclass(frozen=True)
class PolicyChange:
    """A policy before and after a change (``before`` is ``None`` for a model not yet live,
    revision 0 for one served on ``@champion`` alone; ``changed`` is ``False`` when the
    registry held this routing already and stored nothing)."""

    before: TrafficPolicy | None
    after: TrafficPolicy

    @property
    def changed(self) -> bool:
        return self.before is None or self.after.revision != self.before.revision


def with_primary(policy: TrafficPolicy | None, model: str, version: int) -> TrafficPolicy:
    """``policy`` with ``version`` as its primary, the old primary first in the fallbacks."""
    if policy is None:
        return TrafficPolicy(model=model, primary=version)
    if policy.primary == version:
        return policy
    fallback = [policy.primary, *(v for v in policy.fallback if v != version)]
    canary = None if policy.canary == version else policy.canary
    kept = policy if canary is not None else without_canary(policy)
    return replace(
        kept,
        primary=version,
        shadow=tuple(v for v in policy.shadow if v != version),
        fallback=tuple(dict.fromkeys(v for v in fallback if v != canary))[:FALLBACK_DEPTH],
    )


def with_canary(
    policy: TrafficPolicy, version: int, share: float, rule: PromotionRule | None = None
) -> TrafficPolicy:
    """``policy`` with ``version`` answering ``share`` of its requests (judged by ``rule``)."""
    rule = rule or PromotionRule()
    return replace(
        policy,
        canary=version,
        canary_share=share,
        shadow=tuple(v for v in policy.shadow if v != version),
        fallback=tuple(v for v in policy.fallback if v != version),
        promote_after_requests=rule.requests,
        promote_after_minutes=rule.minutes,
    )


def without_canary(policy: TrafficPolicy) -> TrafficPolicy:
    """``policy`` with no canary (nor a promotion rule): the primary answers its share."""
    return replace(
        policy,
        canary=None,
        canary_share=0.0,
        promote_after_requests=None,
        promote_after_minutes=None,
        canary_since=None,
        canary_revision=None,
    )


def with_shadow(policy: TrafficPolicy, version: int) -> TrafficPolicy:
    """``policy`` with ``version`` scoring beside every answer."""
    if version in policy.shadow:
        return policy
    return replace(
        policy,
        shadow=(*policy.shadow, version),
        fallback=tuple(v for v in policy.fallback if v != version),
    )


def rolled_back(policy: TrafficPolicy) -> TrafficPolicy:
    """``policy`` answered by its first fallback again, without the primary and any canary."""
    if not policy.fallback:
        raise ConfigError(
            f"model {policy.model!r} has no @previous version to roll back to (version "
            f"{policy.primary} is live with no fallback); deploy the version you want: "
            f"gristmill deploy {policy.model} VERSION"
        )
    primary, *rest = policy.fallback
    return replace(
        without_canary(policy),
        primary=primary,
        shadow=tuple(v for v in policy.shadow if v != primary),
        fallback=tuple(rest),
    )


def deploy(
    registry: ModelRegistry,
    model: str,
    version: int,
    *,
    mode: DeployMode = "primary",
    share: float = 0.1,
    rule: PromotionRule | None = None,
    reason: str = "",
    actor: str = "gristmill",
    expected_revision: int | None = None,
    rollback_rule: RollbackRule | None = None,
) -> PolicyChange:
    """Deploy ``version`` of ``model`` as its primary, a canary at ``share`` (promoted by
    the canary judge per ``rule``, when given), or a shadow. With ``rollback_rule`` the
    policy carries that rule from this change on; without, it keeps the one it had.

    ``NotFoundError`` for a version that does not exist; ``ConfigError`` for a canary or a
    shadow of a model that has no primary yet, a share outside (0, 1), or a ``rule`` for
    anything but a canary; ``ConflictError`` when ``expected_revision`` is stale.
    """
    if rule and mode != "canary":
        raise ConfigError(
            f"a promotion rule (after {rule.requests} requests / {rule.minutes} minutes) "
            f"is for a canary; deploy {model} {version} as a canary to give it one"
        )
    registry.get_version(model, version)
    before = effective_policy(registry, model)
    _expect(before, expected_revision, model)
    if mode == "primary":
        wanted = with_primary(before, model, version)
    else:
        if before is None:
            raise ConfigError(
                f"model {model!r} has no live version yet, so version {version} cannot be "
                f"its {mode}; deploy a primary first: gristmill deploy {model} VERSION"
            )
        if before.primary == version:
            raise ConfigError(
                f"version {version} is {model}'s primary already; it cannot also be its "
                f"{mode} (deploy another version as the {mode})"
            )
        if mode == "canary":
            wanted = with_canary(before, version, share, rule)
        else:
            wanted = with_shadow(before, version)
    if rollback_rule is not None:
        wanted = replace(wanted, rollback_rule=rollback_rule)
    after = registry.set_policy(
        replace(wanted, reason=reason), actor=actor, expected_revision=expected_revision
    )
    return PolicyChange(before, after)


def rollback(
    registry: ModelRegistry,
    model: str,
    *,
    canary_only: bool = False,
    reason: str = "",
    actor: str = "gristmill",
    expected_revision: int | None = None,
) -> PolicyChange:
    """Send ``model``'s traffic back to ``@previous`` (its first fallback), clearing a
    canary; with ``canary_only``, only clear the canary (``ConfigError`` when there is
    none). ``ConflictError`` when ``expected_revision`` is stale."""
    before = effective_policy(registry, model)
    if before is None:
        raise NotFoundError(
            f"model {model!r} is not deployed (no traffic policy and no @champion); see "
            "`gristmill deployments` and `gristmill models`"
        )
    _expect(before, expected_revision, model)
    if canary_only and before.canary is None:
        raise ConfigError(
            f"model {model!r} has no canary to pull (version {before.primary} answers every "
            f"request); to go back to @previous: gristmill rollback {model}"
        )
    wanted = without_canary(before) if canary_only else rolled_back(before)
    after = registry.set_policy(
        replace(wanted, reason=reason), actor=actor, expected_revision=expected_revision
    )
    return PolicyChange(before, after)


def _expect(before: TrafficPolicy | None, expected: int | None, model: str) -> None:
    """``ConflictError`` when the policy read is not at the ``expected`` revision (the
    registry checks it again when it stores the change, atomically)."""
    revision = 0 if before is None else before.revision
    if expected is not None and revision != expected:
        raise ConflictError(
            f"the traffic policy of {model!r} is at revision {revision}, not {expected} as "
            f"expected: it changed meanwhile; see `gristmill deployments {model}`"
        )


def announcement(change: PolicyChange, *, version: int | None = None) -> dict[str, Any]:
    """The payload of ``model.deployed`` / ``model.rolled_back`` for ``change``: the model,
    the policy's revision and versions, the version deployed (``version``) and, for a change
    of primary, ``alias: champion`` and the ``previous`` primary (as ``promote`` announces)."""
    after, before = change.after, change.before
    payload: dict[str, Any] = {
        "model": after.model,
        "revision": after.revision,
        "primary": after.primary,
        "canary": after.canary,
        "canary_share": after.canary_share,
        "shadow": list(after.shadow),
        "fallback": list(after.fallback),
        "promote_after_requests": after.promote_after_requests,
        "promote_after_minutes": after.promote_after_minutes,
        "rollback": None if after.rollback_rule is None else after.rollback_rule.to_json(),
        "version": after.primary if version is None else version,
        "previous": None if before is None else before.primary,
    }
    if before is None or before.primary != after.primary:
        payload["alias"] = "champion"
    return payload
