"""The canary judge as a server runs it: after each stats flush, judge the canaries (in a
worker thread: it reads and writes the metadata store), then announce each verdict applied
here and switch this process to the new policy at once (the others switch on the event, or
at their next poll).

A promotion is announced as ``model.deployed``, a canary pulled as ``model.rolled_back``,
both with ``announcement``'s payload plus ``source`` (the judge), ``verdict``, ``reason``
and the canary's figures (``stats``). See ``training.canary`` for the rules.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from gristmill.core.events import MODEL_DEPLOYED, MODEL_ROLLED_BACK, Event
from gristmill.server.models import RegistryModels
from gristmill.server.prediction_log import Publish
from gristmill.training.canary import JUDGE, Judgement, judge_canaries
from gristmill.training.deployment import announcement

logger = logging.getLogger(__name__)


def verdict_event(judgement: Judgement) -> Event:
    """The event that announces ``judgement``."""
    progress = judgement.progress
    stats = progress.stats
    canary = progress.policy.canary
    payload: dict[str, Any] = announcement(judgement.change, version=canary)
    payload |= {
        "source": JUDGE,
        "verdict": judgement.verdict,
        "reason": judgement.reason,
        "canary": canary,
        "stats": {
            "requests": stats.requests,
            "answered": stats.answered,
            "errors": stats.errors,
            "client_errors": stats.client_errors,
            "fallbacks": stats.fallbacks,
            "replicas": stats.replicas,
            "minutes": round(progress.minutes, 3),
        },
    }
    kind = MODEL_DEPLOYED if judgement.verdict == "promote" else MODEL_ROLLED_BACK
    return Event(type=kind, key=judgement.change.after.model, payload=payload)


async def judge(models: RegistryModels, publish: Publish | None) -> list[Judgement]:
    """Judge every canary with a promotion rule; announce and apply the verdicts made here."""
    judgements = await asyncio.to_thread(judge_canaries, models.stores.metadata)
    for judgement in judgements:
        model = judgement.change.after.model
        if publish is not None:
            try:
                await publish([verdict_event(judgement)])
            except Exception as exc:
                logger.warning(
                    "could not announce the canary judge's verdict on %s (%s); other servers "
                    "read it at their next poll",
                    model,
                    exc,
                )
        await models.refresh(model)
    return judgements
