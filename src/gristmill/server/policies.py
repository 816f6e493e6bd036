"""The admin API of traffic policies: read them, and change one (stored, announced, applied).

::

    GET /admin/policies            {"policies": [...stored...], "applied": {model: revision}}
    GET /admin/policies/{model}    the stored policy, with the revision this process applies
    PUT /admin/policies/{model}    {"primary": 3, "canary": 4, "canary_share": 0.1,
                                    "promote_after_requests": 1000,
                                    "promote_after_minutes": 30,
                                    "shadow": [5], "fallback": [2],
                                    "rollback": {"max_miss_rate": 0.05},
                                    "reason": "..."}

A PUT is checked field by field (a 400 names the field: a version that is not registered, a
share outside (0, 1), a canary without a share, a rollback rule's field as
``rollback.FIELD``), stored with ``registry.set_policy`` (which numbers the revision and
writes the audit entry), announced as ``model.deployed`` so every other server applies it,
and applied by this process before it answers. A body without ``rollback`` keeps the stored
policy's rollback rule; ``"rollback": null`` removes it. All need the server's bearer token
(``serve.token``), as ``/admin/reload`` does.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Awaitable, Callable
from typing import Any

from gristmill.core.events import MODEL_DEPLOYED, Event
from gristmill.errors import DataError, NotFoundError
from gristmill.features.stores import FeatureStores
from gristmill.stores.models import TrafficPolicy
from gristmill.stores.rollback_rules import RollbackRule, rule_of, rule_problem

FIELDS = (
    "primary",
    "canary",
    "canary_share",
    "promote_after_requests",
    "promote_after_minutes",
    "shadow",
    "fallback",
    "rollback",
    "reason",
)
ACTOR = "serve-admin"

Publish = Callable[[list[Event]], Awaitable[None]]


def policy_body(policy: TrafficPolicy) -> dict[str, Any]:
    """A policy as JSON."""
    return {
        "model": policy.model,
        "kind": policy.kind,
        "primary": policy.primary,
        "canary": policy.canary,
        "canary_share": policy.canary_share,
        "shadow": list(policy.shadow),
        "fallback": list(policy.fallback),
        "revision": policy.revision,
        "changed_at": None if policy.changed_at is None else policy.changed_at.isoformat(),
        "changed_by": policy.changed_by,
        "reason": policy.reason,
        "promote_after_requests": policy.promote_after_requests,
        "promote_after_minutes": policy.promote_after_minutes,
        "canary_since": None if policy.canary_since is None else policy.canary_since.isoformat(),
        "canary_revision": policy.canary_revision,
        "rollback": None if policy.rollback_rule is None else policy.rollback_rule.to_json(),
    }


def _version(body: dict[str, Any], field: str, *, required: bool = False) -> int | None:
    value = body.get(field)
    if value is None and not required:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise DataError(
            f"{field} must be a version number (an integer from 1); got {value!r}", column=field
        )
    return value


def _versions(body: dict[str, Any], field: str) -> tuple[int, ...]:
    value = body.get(field, [])
    if not isinstance(value, list) or not all(
        isinstance(v, int) and not isinstance(v, bool) and v >= 1 for v in value
    ):
        raise DataError(
            f"{field} must be a list of version numbers (integers from 1); got {value!r}",
            column=field,
        )
    return tuple(dict.fromkeys(value))


def parse_policy(model: str, body: Any) -> TrafficPolicy:
    """The policy a PUT body asks for; ``DataError`` naming the field at fault."""
    if not isinstance(body, dict):
        raise DataError(f"the body must be a JSON object with {', '.join(FIELDS)}", column="body")
    unknown = [k for k in body if k not in FIELDS]
    if unknown:
        raise DataError(
            f"unknown field {unknown[0]!r}; a policy takes: {', '.join(FIELDS)}",
            column=str(unknown[0]),
        )
    primary = _version(body, "primary", required=True)
    assert primary is not None
    canary = _version(body, "canary")
    share = body.get("canary_share", 0.0)
    if isinstance(share, bool) or not isinstance(share, int | float):
        raise DataError(f"canary_share must be a number; got {share!r}", column="canary_share")
    if canary is not None and not 0 < share < 1:
        raise DataError(
            f"canary_share must be above 0 and below 1 with a canary (0.1: a tenth of the "
            f"requests); got {share!r}",
            column="canary_share",
        )
    if canary is None and share != 0:
        raise DataError("canary_share needs a canary version", column="canary")
    if canary == primary:
        raise DataError(f"the canary is the primary ({primary}); name another", column="canary")
    reason = body.get("reason", "")
    if not isinstance(reason, str):
        raise DataError(f"reason must be text; got {reason!r}", column="reason")
    requests, minutes = _rule(body, canary)
    rollback_rule = _rollback_rule(body.get("rollback"))
    return TrafficPolicy(
        model=model,
        primary=primary,
        canary=canary,
        canary_share=float(share) if canary is not None else 0.0,
        shadow=_versions(body, "shadow"),
        fallback=_versions(body, "fallback"),
        changed_by=ACTOR,
        reason=reason,
        promote_after_requests=requests,
        promote_after_minutes=minutes,
        rollback_rule=rollback_rule,
    )


def keeps_rollback_rule(body: Any) -> bool:
    """A PUT body that says nothing of ``rollback`` keeps the stored policy's rule
    (``"rollback": null`` removes it)."""
    return isinstance(body, dict) and "rollback" not in body


def _rollback_rule(value: Any) -> RollbackRule | None:
    """A body's ``rollback`` object as a rule; ``DataError`` naming ``rollback.FIELD``."""
    if value is None:
        return None
    if not isinstance(value, dict):
        raise DataError(
            f'rollback must be an object such as {{"max_miss_rate": 0.05}}; got {value!r}',
            column="rollback",
        )
    try:
        rule = rule_of(value)
    except KeyError as exc:
        known = ", ".join(f.name for f in dataclasses.fields(RollbackRule))
        raise DataError(
            f"rollback has no field {exc.args[0]!r}; a rollback rule takes: {known}",
            column=f"rollback.{exc.args[0]}",
        ) from None
    problem = rule_problem(rule)
    if problem is not None:
        raise DataError(f"rollback: {problem[1]}", column=f"rollback.{problem[0]}")
    return rule


def _rule(body: dict[str, Any], canary: int | None) -> tuple[int | None, float | None]:
    """A body's promotion rule; ``DataError`` naming the field at fault."""
    requests = body.get("promote_after_requests")
    minutes = body.get("promote_after_minutes")
    if requests is not None and (
        isinstance(requests, bool) or not isinstance(requests, int) or requests < 1
    ):
        raise DataError(
            f"promote_after_requests must be a whole number from 1; got {requests!r}",
            column="promote_after_requests",
        )
    if minutes is not None and (
        isinstance(minutes, bool) or not isinstance(minutes, int | float) or not minutes > 0
    ):
        raise DataError(
            f"promote_after_minutes must be a number above 0; got {minutes!r}",
            column="promote_after_minutes",
        )
    if canary is None and (requests is not None or minutes is not None):
        field = "promote_after_requests" if requests is not None else "promote_after_minutes"
        raise DataError(f"{field} is a canary's promotion rule; name the canary", column=field)
    return requests, None if minutes is None else float(minutes)


def check_versions(stores: FeatureStores, policy: TrafficPolicy) -> None:
    """``NotFoundError`` when the model has no version; ``DataError`` naming the field of a
    version it does not have."""
    registry = stores.metadata.registry
    if not registry.list_versions(policy.model, limit=1):
        raise NotFoundError(
            f"no model named {policy.model!r} is registered; list them with `gristmill models`"
        )
    fields = [("primary", policy.primary), ("canary", policy.canary)]
    fields += [("shadow", v) for v in policy.shadow] + [("fallback", v) for v in policy.fallback]
    for field, number in fields:
        if number is None:
            continue
        try:
            registry.get_version(policy.model, number)
        except NotFoundError:
            raise DataError(
                f"{policy.model} has no version {number} ({field}); see "
                f"`gristmill models {policy.model}`",
                column=field,
            ) from None


def stored_policies(stores: FeatureStores) -> list[TrafficPolicy]:
    return stores.metadata.registry.list_policies()


def stored_policy(stores: FeatureStores, model: str) -> TrafficPolicy:
    policy = stores.metadata.registry.get_policy(model)
    if policy is None:
        raise NotFoundError(
            f"{model} has no traffic policy: requests naming it alone go to @champion; set "
            f"one with PUT /admin/policies/{model} or `gristmill deploy`"
        )
    return policy


async def store_policy(
    stores: FeatureStores,
    policy: TrafficPolicy,
    publish: Publish | None,
    *,
    keep_rollback_rule: bool = False,
) -> TrafficPolicy:
    """Check, store and announce ``policy``; the stored one (with its revision). With
    ``keep_rollback_rule`` it takes the stored policy's rollback rule."""
    registry = stores.metadata.registry
    await asyncio.to_thread(check_versions, stores, policy)
    if keep_rollback_rule:
        current = await asyncio.to_thread(registry.get_policy, policy.model)
        if current is not None:
            policy = dataclasses.replace(policy, rollback_rule=current.rollback_rule)
    stored = await asyncio.to_thread(registry.set_policy, policy, actor=ACTOR)
    if publish is not None:
        payload = {**policy_body(stored), "source": ACTOR}
        await publish([Event(type=MODEL_DEPLOYED, key=stored.model, payload=payload)])
    return stored
