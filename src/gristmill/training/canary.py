"""The canary judge: a canary with a promotion rule is promoted once it has run long enough
without errors, and pulled at its first error.

A canary is *judged* when its policy carries a promotion rule (``promote_after_requests``
and/or ``promote_after_minutes``, from the spec's ``deploy.canary_requests`` /
``canary_minutes``, ``gristmill deploy --promote-after-…`` or the admin API). Its figures
are the serving stats every server process recorded for the requests the canary version
was sent by its policy since it became the canary (``policy.canary_revision`` and later
revisions; requests naming the version itself are not the canary's), summed over the
processes:

* **pull** when it failed a request with a server error (5xx) or passed one to its
  fallback (it raised, or could not be loaded): the policy goes back to the primary alone
  (``rollback(canary_only=True)``). A client's error (4xx: a malformed body, a missing
  column) is the client's, not the version's, and does not count.
* **promote** when it answered at least ``promote_after_requests`` requests and ran at least
  ``promote_after_minutes`` minutes (each when set), and answered at least one request —
  a canary nobody asked is not proven: it becomes the primary, the old primary its first
  fallback (``@previous``), exactly as ``gristmill deploy MODEL VERSION`` does (``deploy``).
* **wait** otherwise.

Every server judges after each stats flush, so several may reach the same verdict at once:
each change is made with the revision it judged as ``expected_revision``, and only the first
is stored (the others get ``ConflictError`` and drop theirs) — one revision, one audit entry.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Literal

from gristmill.errors import ConflictError
from gristmill.stores.metadata import MetadataStore
from gristmill.stores.models import TrafficPolicy
from gristmill.stores.serving_stats import ServingStats, ServingStatsStore
from gristmill.training.deployment import PolicyChange, deploy, rollback

logger = logging.getLogger(__name__)

JUDGE = "gristmill canary judge"
Verdict = Literal["wait", "promote", "pull"]


@dataclass(frozen=True)
class CanaryProgress:
    """A canary's figures so far against its promotion rule."""

    policy: TrafficPolicy
    stats: ServingStats
    minutes: float
    """Minutes since the canary started."""

    @property
    def failures(self) -> int:
        """Server errors and fallbacks: either one pulls a judged canary."""
        return self.stats.errors + self.stats.fallbacks

    def verdict(self) -> Verdict:
        policy = self.policy
        if not policy.judged:
            return "wait"
        if self.failures:
            return "pull"
        requests, minutes = policy.promote_after_requests, policy.promote_after_minutes
        if self.stats.answered < max(requests or 0, 1):
            return "wait"
        if minutes is not None and self.minutes < minutes:
            return "wait"
        return "promote"

    def describe(self) -> str:
        """``120/500 requests, 0 errors, 0 fallbacks, 3.2/10 min`` (a rule's part only when
        set), plus client errors and replicas when there are any."""
        stats, policy = self.stats, self.policy
        parts = [
            f"{stats.answered}/{policy.promote_after_requests} requests"
            if policy.promote_after_requests is not None
            else f"{stats.answered} requests",
            f"{stats.errors} errors",
            f"{stats.fallbacks} fallbacks",
        ]
        if stats.client_errors:
            parts.append(f"{stats.client_errors} client errors")
        run = f"{self.minutes:.1f}"
        if policy.promote_after_minutes is not None:
            run += f"/{policy.promote_after_minutes:g}"
        parts.append(f"{run} min")
        if stats.replicas > 1:
            parts.append(f"over {stats.replicas} servers")
        return ", ".join(parts)


def canary_progress(
    stats: ServingStatsStore, policy: TrafficPolicy, *, now: datetime | None = None
) -> CanaryProgress | None:
    """The progress of ``policy``'s canary (``None``: it has no canary)."""
    if policy.canary is None:
        return None
    now = now or datetime.now(UTC)
    since = policy.canary_since or policy.changed_at or now
    figures = stats.stats(
        policy.model, policy.canary, since=since, min_revision=policy.canary_revision or 0
    )
    minutes = max(0.0, (now - since).total_seconds() / 60)
    return CanaryProgress(policy, figures, minutes)


@dataclass(frozen=True)
class Judgement:
    """A verdict the judge applied: the policy change it stored, and why."""

    verdict: Literal["promote", "pull"]
    progress: CanaryProgress
    change: PolicyChange
    reason: str


def judge_canaries(
    metadata: MetadataStore, *, now: datetime | None = None, actor: str = JUDGE
) -> list[Judgement]:
    """Judge every stored canary that has a promotion rule; the verdicts applied here (a
    verdict another judge applied first is not one of them)."""
    applied = []
    for policy in metadata.registry.list_policies():
        if not policy.judged:
            continue
        progress = canary_progress(metadata.serving_stats, policy, now=now)
        if progress is None:
            continue
        verdict = progress.verdict()
        if verdict == "wait":
            continue
        judged = _apply(metadata, progress, verdict, actor)
        if judged is not None:
            applied.append(judged)
    return applied


def _apply(
    metadata: MetadataStore,
    progress: CanaryProgress,
    verdict: Literal["promote", "pull"],
    actor: str,
) -> Judgement | None:
    policy = progress.policy
    canary = policy.canary
    if canary is None:  # judged policies have one
        return None
    registry = metadata.registry
    if verdict == "promote":
        reason = f"canary {canary} promoted by the canary judge: {progress.describe()}"
    else:
        reason = (
            f"canary {canary} pulled by the canary judge after a server error: "
            f"{progress.describe()}"
        )
    try:
        if verdict == "promote":
            change = deploy(
                registry,
                policy.model,
                canary,
                reason=reason,
                actor=actor,
                expected_revision=policy.revision,
            )
        else:
            change = rollback(
                registry,
                policy.model,
                canary_only=True,
                reason=reason,
                actor=actor,
                expected_revision=policy.revision,
            )
    except ConflictError:
        logger.info(
            "%s's policy changed since revision %d was judged (another server judged it "
            "first, or a person changed it); its canary is judged again on the current one",
            policy.model,
            policy.revision,
        )
        return None
    logger.warning("%s: %s (policy revision %d)", policy.model, reason, change.after.revision)
    return Judgement(verdict, progress, change, reason)
