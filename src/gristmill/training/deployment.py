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
* **canary**: the version answers ``share`` of requests beside the primary.
* **shadow**: the version scores every request beside the answer, never answering.
* **rollback**: the first fallback becomes the primary again; the primary that is rolled
  back leaves the policy, and so does any canary.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any, Literal

from gristmill.errors import ConfigError, NotFoundError
from gristmill.stores.models import ModelRegistry, TrafficPolicy, effective_policy

DeployMode = Literal["primary", "canary", "shadow"]
FALLBACK_DEPTH = 2
"""How many earlier primaries a deployment keeps as fallbacks (each is loaded by servers)."""


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
    return replace(
        policy,
        primary=version,
        canary=canary,
        canary_share=policy.canary_share if canary is not None else 0.0,
        shadow=tuple(v for v in policy.shadow if v != version),
        fallback=tuple(dict.fromkeys(v for v in fallback if v != canary))[:FALLBACK_DEPTH],
    )


def with_canary(policy: TrafficPolicy, version: int, share: float) -> TrafficPolicy:
    """``policy`` with ``version`` answering ``share`` of its requests."""
    return replace(
        policy,
        canary=version,
        canary_share=share,
        shadow=tuple(v for v in policy.shadow if v != version),
        fallback=tuple(v for v in policy.fallback if v != version),
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
        policy,
        primary=primary,
        canary=None,
        canary_share=0.0,
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
    reason: str = "",
    actor: str = "gristmill",
) -> PolicyChange:
    """Deploy ``version`` of ``model`` as its primary, a canary at ``share``, or a shadow.

    ``NotFoundError`` for a version that does not exist; ``ConfigError`` for a canary or a
    shadow of a model that has no primary yet, or a share outside (0, 1).
    """
    registry.get_version(model, version)
    before = effective_policy(registry, model)
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
            wanted = with_canary(before, version, share)
        else:
            wanted = with_shadow(before, version)
    after = registry.set_policy(replace(wanted, reason=reason), actor=actor)
    return PolicyChange(before, after)


def rollback(
    registry: ModelRegistry, model: str, *, reason: str = "", actor: str = "gristmill"
) -> PolicyChange:
    """Send ``model``'s traffic back to ``@previous`` (its first fallback), clearing a canary."""
    before = effective_policy(registry, model)
    if before is None:
        raise NotFoundError(
            f"model {model!r} is not deployed (no traffic policy and no @champion); see "
            "`gristmill deployments` and `gristmill models`"
        )
    after = registry.set_policy(replace(rolled_back(before), reason=reason), actor=actor)
    return PolicyChange(before, after)


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
        "version": after.primary if version is None else version,
        "previous": None if before is None else before.primary,
    }
    if before is None or before.primary != after.primary:
        payload["alias"] = "champion"
    return payload
