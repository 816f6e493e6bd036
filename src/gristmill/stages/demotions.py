"""What a monitoring stage does when a live version crosses a rollback rule it judges itself
(``on_drift``, ``max_quality_drop``): demote it through ``training.rollback.demote`` — once,
whatever the number of workers or redeliveries, since a demoted version is no longer live
and a model in its cool-down is left alone — POST the rule's webhook, and hand back what to
announce (``model.rolled_back``, ``monitor.alert``)."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from gristmill.core.webhooks import notify
from gristmill.stages.base import Announcement
from gristmill.stores.metadata import MetadataStore
from gristmill.stores.rollback_rules import RollbackRule
from gristmill.training.rollback import demote

logger = logging.getLogger(__name__)


def demoted(
    metadata: MetadataStore,
    model: str,
    version: int,
    reason: str,
    figures: dict[str, Any],
    *,
    trigger: str,
    judged_by: Callable[[RollbackRule], bool],
) -> list[Announcement]:
    """Demote ``model``/``version`` for ``reason`` when its policy has a rollback rule that
    ``judged_by`` says this trigger applies to; the announcements of the demotion made (none
    when nothing changed)."""
    policy = metadata.registry.get_policy(model)
    if policy is None or policy.rollback_rule is None or not judged_by(policy.rollback_rule):
        return []
    if version not in (policy.primary, policy.canary):
        return []
    demotion = demote(metadata, policy, version, reason, figures, trigger=trigger)
    if demotion is None:
        return []
    if demotion.webhook:
        notify(demotion.webhook, demotion.alert())
    return [Announcement(kind, body, key=model) for kind, body in demotion.events()]
