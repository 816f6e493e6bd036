"""Promotions reach a running server two ways: ``model.deployed`` on the bus, and polling.

The bus brings a promotion within about a second; polling the registry every
``serve.poll_seconds`` catches what the bus cannot (a promotion made without announcing it,
a bus that was down). Both call ``RegistryModels.refresh``, which is idempotent, so an event
seen twice, or an event and a poll, cost one registry read each and switch once.

Each server process reads the bus in its own consumer group (``serve-<host>-<pid>``), since
every process must see every promotion; a new group starts from the oldest retained event,
which only makes a fresh server read its aliases once more.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket

from gristmill.bus.port import EventBus
from gristmill.core.events import MODEL_DEPLOYED
from gristmill.server.models import RegistryModels

logger = logging.getLogger(__name__)


def consumer_name() -> str:
    return f"{socket.gethostname()}-{os.getpid()}"


async def poll(models: RegistryModels, seconds: float) -> None:
    """Refresh every ``seconds`` until cancelled."""
    while True:
        await asyncio.sleep(seconds)
        try:
            await models.refresh()
        except Exception:
            logger.exception("could not read the registry; trying again in %ss", seconds)


async def listen(models: RegistryModels, bus: EventBus, consumer: str | None = None) -> None:
    """Refresh the model each ``model.deployed`` names, until cancelled."""
    consumer = consumer or consumer_name()
    group = f"serve-{consumer}"
    while True:
        try:
            deliveries = await bus.consume(group, MODEL_DEPLOYED, consumer, max_events=16)
            for delivery in deliveries:
                await models.refresh(delivery.event.key or None)
                await bus.ack(delivery)
        except asyncio.CancelledError:
            raise
        except Exception:
            logger.exception("could not read model.deployed from the bus; polling goes on")
            await asyncio.sleep(1.0)
