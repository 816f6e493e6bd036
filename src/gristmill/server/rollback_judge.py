"""The rollback judge as a server runs it: after each stats flush and the canary judge, judge
every policy with a rollback rule (in a worker thread: it reads and writes the metadata
store), switch this process to each new policy at once (the others switch on the event, or
at their next poll), announce ``model.rolled_back`` and ``monitor.alert``, and POST the
alert to the rule's webhook — in the background, bounded by ``WEBHOOK_TIMEOUT`` per try, a
failure logged and never raised. See ``training.rollback`` for the rules.
"""

from __future__ import annotations

import asyncio
import logging

from gristmill.core.events import Event
from gristmill.server.models import RegistryModels
from gristmill.server.prediction_log import Publish
from gristmill.training.rollback import Demotion, judge_rollbacks

logger = logging.getLogger(__name__)

WEBHOOK_TIMEOUT = 3.0
"""Seconds one POST of an alert to a rule's webhook may take."""
WEBHOOK_ATTEMPTS = 2

_posting: set[asyncio.Task[None]] = set()
"""Webhook POSTs under way (a task the loop holds only weakly would be collected)."""


async def judge(models: RegistryModels, publish: Publish | None) -> list[Demotion]:
    """Judge every policy with a rollback rule; apply, announce and alert the demotions
    made here."""
    demotions = await asyncio.to_thread(judge_rollbacks, models.stores.metadata)
    for demotion in demotions:
        await models.refresh(demotion.model)
        if publish is not None:
            events = [
                Event(type=kind, key=demotion.model, payload=body)
                for kind, body in demotion.events()
            ]
            try:
                await publish(events)
            except Exception as exc:
                logger.warning(
                    "could not announce the rollback of %s (%s); other servers read the "
                    "policy at their next poll",
                    demotion.model,
                    exc,
                )
        if demotion.webhook:
            task = asyncio.create_task(_post(demotion.webhook, demotion))
            _posting.add(task)
            task.add_done_callback(_posting.discard)
    return demotions


async def _post(url: str, demotion: Demotion) -> None:
    from gristmill.core.webhooks import notify

    try:
        accepted = await asyncio.to_thread(
            notify, url, demotion.alert(), attempts=WEBHOOK_ATTEMPTS, timeout=WEBHOOK_TIMEOUT
        )
    except Exception:
        logger.exception("could not POST the rollback alert of %s to its webhook", demotion.model)
        return
    if not accepted:
        logger.warning(
            "the webhook of %s's rollback rule did not accept the alert of %s/%d",
            demotion.model,
            demotion.model,
            demotion.version,
        )
