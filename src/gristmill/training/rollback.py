"""The rollback judge: a live version that crosses its policy's rollback rule is demoted —
once, through the deployment policy.

A policy with a ``RollbackRule`` (``stores.rollback_rules``) has its **primary** (when it has
a fallback to go back to) and its **canary** judged on the serving stats every server
process recorded for the requests the *current* policy revision sent them, over the last
``window_minutes`` (whole minutes: the minute holding ``now - window`` counts whole), summed
over the processes — and only once they hold at least ``min_requests`` requests (the
minimum window). A version crosses the rule when

* its **miss rate** (latency budget misses per request) is above ``max_miss_rate``, or
* its **error rate** (server errors, 5xx, per request) is above ``max_error_rate``.

``on_drift`` and ``max_quality_drop`` are judged by the monitoring stages, which call
``demote`` themselves (``stages.demotions``): the drift stage on a drift alert of the live
version, the feedback and live-quality stages when a measured window with ``min_requests``
labelled predictions falls further below the version's offline metric than
``max_quality_drop`` (``stages.quality_windows.quality_demotions``).

A crossing **demotes** the version: a canary is pulled (``rollback(canary_only=True)``), a
primary rolled back to ``@previous`` (``rollback``), with the revision judged as
``expected_revision`` — of several servers judging at once one stores the change, the others
get ``ConflictError`` and drop theirs — by the actor ``ROLLBACK_JUDGE``, whose audit entry's
reason gives the figures (``miss rate 42% > 5% over 310 requests in 5 min``). After it the
version is no longer in the policy, so it is not judged again; and no automatic rollback of
the same model follows within ``cooldown_minutes`` of the judge's last change (read from the
audit log), so versions do not flap.

A ``Demotion`` carries what the caller announces: ``model.rolled_back`` (``source``,
``verdict``, ``trigger``, ``reason``, ``stats``) and ``monitor.alert`` (``kind: rollback``),
and the rule's webhook, if any, to POST the alert to (``events``, ``alert``). The server
(``server.rollback_judge``) publishes them; a stage returns them as announcements::

    demotion = demote(metadata, policy, version, "column age drifted: psi 0.41 > 0.2",
                      {"column": "age", "psi": 0.41}, trigger="drift")
    if demotion is not None:
        announcements = [Announcement(kind, body, key=policy.model)
                         for kind, body in demotion.events()]
        if demotion.webhook:
            notify(demotion.webhook, demotion.alert())      # core.webhooks.notify
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from gristmill.config.rollback import RollbackSpec
from gristmill.core.events import MODEL_ROLLED_BACK, MONITOR_ALERT
from gristmill.core.ids import digest_json
from gristmill.errors import ConfigError, ConflictError
from gristmill.stores.metadata import MetadataStore
from gristmill.stores.models import TrafficPolicy
from gristmill.stores.rollback_rules import DEFAULT_COOLDOWN_MINUTES, RollbackRule, percent
from gristmill.stores.serving_stats import ServingStats, ServingStatsStore
from gristmill.training.deployment import PolicyChange, announcement, rollback

logger = logging.getLogger(__name__)

ROLLBACK_JUDGE = "gristmill rollback judge"
"""The actor of every automatic demotion (audit entries, ``changed_by``)."""
Role = Literal["primary", "canary"]
AUDIT_LOOKBACK = 200
"""Policy changes of a model read, newest first, for its cool-down."""

_HELD: set[tuple[str, int, datetime]] = set()
"""Versions held back by a cool-down (model, version, the rollback that began it) this
process has said so of: the warning once, not at every judgement."""


def rule_from_spec(spec: RollbackSpec) -> RollbackRule:
    """The rule the spec's ``monitor.rollback`` describes."""
    return RollbackRule(
        max_miss_rate=spec.max_miss_rate,
        max_error_rate=spec.max_error_rate,
        max_quality_drop=spec.max_quality_drop,
        quality_metric=spec.quality_metric,
        on_drift=spec.on_drift,
        min_requests=spec.min_requests,
        window_minutes=spec.window_minutes,
        cooldown_minutes=spec.cooldown_minutes,
        webhook=spec.webhook,
    )


@dataclass(frozen=True)
class Reading:
    """A live version's figures over its rule's window (``stats``), of the current revision."""

    policy: TrafficPolicy
    version: int
    role: Role
    stats: ServingStats

    @property
    def rule(self) -> RollbackRule:
        if self.policy.rollback_rule is None:
            raise ConfigError(f"the traffic policy of {self.policy.model!r} has no rollback rule")
        return self.policy.rollback_rule

    def crossing(self) -> str | None:
        """What crossed the rule (``miss rate 42% > 5% over 310 requests in 5 min``), or
        ``None``: nothing, or fewer than ``min_requests`` requests so far."""
        rule, stats = self.rule, self.stats
        if stats.requests < rule.min_requests:
            return None
        span = f"over {stats.requests} requests in {rule.window_minutes:g} min"
        for name, rate, limit in (
            ("miss rate", stats.miss_rate, rule.max_miss_rate),
            ("error rate", stats.error_rate, rule.max_error_rate),
        ):
            if limit is not None and rate is not None and rate > limit:
                return f"{name} {percent(rate)} > {percent(limit)} {span}"
        return None

    def trigger(self) -> str:
        """``latency`` or ``errors``: which of the serving figures crossed."""
        rule, stats = self.rule, self.stats
        limit, rate = rule.max_miss_rate, stats.miss_rate
        return "latency" if limit is not None and rate is not None and rate > limit else "errors"

    def figures(self) -> dict[str, Any]:
        stats = self.stats
        return {
            "requests": stats.requests,
            "budget_misses": stats.budget_misses,
            "errors": stats.errors,
            "client_errors": stats.client_errors,
            "fallbacks": stats.fallbacks,
            "miss_rate": stats.miss_rate,
            "error_rate": stats.error_rate,
            "replicas": stats.replicas,
            "revision": self.policy.revision,
            "window_minutes": self.rule.window_minutes,
            "since": stats.since.isoformat(),
        }


def readings(
    stats: ServingStatsStore, policy: TrafficPolicy, *, now: datetime | None = None
) -> list[Reading]:
    """The judged versions of ``policy`` and their figures: its primary (when it has a
    fallback to roll back to), then its canary; none without a rollback rule."""
    rule = policy.rollback_rule
    if rule is None:
        return []
    since = (now or datetime.now(UTC)) - timedelta(minutes=rule.window_minutes)
    judged: list[tuple[int, Role]] = [(policy.primary, "primary")] if policy.fallback else []
    if policy.canary is not None:
        judged.append((policy.canary, "canary"))
    return [
        Reading(
            policy,
            version,
            role,
            stats.stats(policy.model, version, since=since, min_revision=policy.revision),
        )
        for version, role in judged
    ]


@dataclass(frozen=True)
class Demotion:
    """A demotion the judge stored: the policy change, who was demoted and why."""

    change: PolicyChange
    version: int
    role: Role
    trigger: str
    """What crossed: ``latency``, ``errors``, ``drift``, ``quality`` (or the caller's word)."""
    reason: str
    figures: dict[str, Any] = field(default_factory=dict)
    at: datetime = field(default_factory=lambda: datetime.now(UTC))

    @property
    def model(self) -> str:
        return self.change.after.model

    @property
    def webhook(self) -> str | None:
        rule = self.change.after.rollback_rule
        return None if rule is None else rule.webhook

    @property
    def verdict(self) -> Literal["rollback", "pull"]:
        return "rollback" if self.role == "primary" else "pull"

    def alert(self) -> dict[str, Any]:
        """The ``monitor.alert`` payload (and the webhook's body)."""
        after, before = self.change.after, self.change.before
        judged = before.revision if before is not None else 0
        return {
            "kind": "rollback",
            "alert_id": "ra_" + digest_json({"model": self.model, "revision": judged})[7:31],
            "model": self.model,
            "version": self.version,
            "role": self.role,
            "verdict": self.verdict,
            "trigger": self.trigger,
            "reason": self.reason,
            "stats": self.figures,
            "primary": after.primary,
            "revision": after.revision,
            "raised_at": self.at.isoformat(),
        }

    def rolled_back(self) -> dict[str, Any]:
        """The ``model.rolled_back`` payload."""
        payload = announcement(self.change, version=self.version)
        payload |= {
            "source": ROLLBACK_JUDGE,
            "verdict": self.verdict,
            "trigger": self.trigger,
            "reason": self.reason,
            "stats": self.figures,
        }
        if self.role == "canary":
            payload["canary"] = self.version
        return payload

    def events(self) -> list[tuple[str, dict[str, Any]]]:
        """``(event type, payload)`` of what to announce: the rollback, then the alert."""
        return [(MODEL_ROLLED_BACK, self.rolled_back()), (MONITOR_ALERT, self.alert())]


def judge_rollbacks(metadata: MetadataStore, *, now: datetime | None = None) -> list[Demotion]:
    """Judge the primary and canary of every policy with a rollback rule; the demotions
    stored here (one per model at most; one another judge stored first is not one)."""
    now = now or datetime.now(UTC)
    demoted = []
    for policy in metadata.registry.list_policies():
        rule = policy.rollback_rule
        if rule is None or (rule.max_miss_rate is None and rule.max_error_rate is None):
            continue  # drift and quality are the monitoring stages' to judge
        for reading in readings(metadata.serving_stats, policy, now=now):
            crossing = reading.crossing()
            if crossing is None:
                continue
            demotion = demote(
                metadata,
                policy,
                reading.version,
                crossing,
                reading.figures(),
                trigger=reading.trigger(),
                now=now,
            )
            if demotion is not None:
                demoted.append(demotion)
            break  # one change per policy and judgement: the next is on a new revision
    return demoted


def demote(
    metadata: MetadataStore,
    policy: TrafficPolicy,
    version: int,
    reason: str,
    figures: dict[str, Any] | None = None,
    *,
    trigger: str = "monitoring",
    now: datetime | None = None,
) -> Demotion | None:
    """Demote ``version``, the primary or the canary of ``policy`` (as read by the caller),
    because of ``reason`` (what crossed, with its figures); the demotion, or ``None`` when
    none is made: the version is not ``policy``'s primary or canary, a primary has no
    fallback, the model is in its cool-down, or the policy changed since it was read
    (another judge, a person). Logged either way; never raises for those."""
    now = now or datetime.now(UTC)
    role: Role | None = (
        "primary" if version == policy.primary else "canary" if version == policy.canary else None
    )
    where = f"{policy.model}/{version}"
    if role is None:
        logger.info("%s is not live in policy revision %d: not demoted", where, policy.revision)
        return None
    rule = policy.rollback_rule
    cooldown = rule.cooldown_minutes if rule is not None else DEFAULT_COOLDOWN_MINUTES
    last = _last_rollback(metadata, policy.model)
    if last is not None and now - last < timedelta(minutes=cooldown):
        held = (policy.model, version, last)
        log = logger.debug if held in _HELD else logger.warning  # once per cool-down
        _HELD.add(held)
        log(
            "%s crossed its rollback rule (%s) but %s was rolled back automatically at %s, "
            "within its cool-down of %g min: not demoted before %s",
            where,
            reason,
            policy.model,
            last.isoformat(timespec="seconds"),
            cooldown,
            (last + timedelta(minutes=cooldown)).isoformat(timespec="seconds"),
        )
        return None
    if role == "primary" and not policy.fallback:
        logger.warning(
            "%s crossed its rollback rule (%s) but has no @previous to roll back to",
            where,
            reason,
        )
        return None
    action = f"pulled (primary {policy.primary} answers)"
    if role == "primary":
        action = f"rolled back to version {policy.fallback[0]}"
    stored_reason = f"{role} {version} {action} by the rollback judge: {reason}"
    try:
        change = rollback(
            metadata.registry,
            policy.model,
            canary_only=role == "canary",
            reason=stored_reason,
            actor=ROLLBACK_JUDGE,
            expected_revision=policy.revision,
        )
    except ConflictError:
        logger.info(
            "%s's policy changed since revision %d was judged (another server judged it "
            "first, or a person changed it); it is judged again on the current one",
            policy.model,
            policy.revision,
        )
        return None
    logger.warning(
        "%s: %s (policy revision %d)", policy.model, stored_reason, change.after.revision
    )
    return Demotion(change, version, role, trigger, stored_reason, dict(figures or {}), now)


def _last_rollback(metadata: MetadataStore, model: str) -> datetime | None:
    """When the rollback judge last changed ``model``'s policy (``None``: not lately)."""
    entries = metadata.audit.list_entries(
        subject=f"model:{model}", action="model.policy_set", limit=AUDIT_LOOKBACK
    )
    for entry in entries:
        if entry.actor == ROLLBACK_JUDGE:
            return entry.at
    return None
