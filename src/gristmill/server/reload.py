"""Promotions reach a running server two ways: ``model.deployed`` (and
``model.rolled_back``) on the bus, and polling.

The bus brings a promotion within about a second; polling the registry every
``serve.poll_seconds`` catches what the bus cannot (a promotion made without announcing it,
a bus that was down), aliases and traffic policies (by their ``revision``) alike. Both
call ``RegistryModels.refresh``, which is idempotent, so an event
seen twice, or an event and a poll, cost one registry read each and switch once.

Each server process reads the bus in its own consumer group (``serve-<host>-<pid>``), since
every process must see every promotion; a new group starts from the oldest retained event,
which only makes a fresh server read its aliases once more. A server that stops cleanly
deletes its group (``leave``); one killed (``kill -9``, a lost machine) leaves it, and
``gristmill gc`` deletes the groups of this host whose process is gone (``stale_groups``).
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
from typing import TYPE_CHECKING

from gristmill.bus.port import EventBus
from gristmill.core.events import MODEL_DEPLOYED, MODEL_ROLLED_BACK
from gristmill.core.outages import OutageLog
from gristmill.errors import BackendError

if TYPE_CHECKING:  # gc imports this module without the server's dependencies
    from gristmill.server.models import RegistryModels

logger = logging.getLogger(__name__)


GROUP_PREFIX = "serve-"
TOPICS = (MODEL_DEPLOYED, MODEL_ROLLED_BACK)
"""What a server listens to: an alias moved, a traffic policy changed or went back."""


def consumer_name() -> str:
    return f"{socket.gethostname()}-{os.getpid()}"


def group_name(consumer: str | None = None) -> str:
    """The consumer group of this server process (of ``consumer``, if given)."""
    return f"{GROUP_PREFIX}{consumer or consumer_name()}"


async def leave(bus: EventBus, consumer: str | None = None) -> None:
    """Delete this process's consumer group (at a clean stop); a failure is only logged."""
    group = group_name(consumer)
    for topic in TOPICS:
        try:
            await bus.delete_group(group, topic)
        except Exception as exc:
            logger.warning(
                "could not delete consumer group %s of %s (%s); `gristmill gc` removes it",
                group,
                topic,
                exc,
            )


def _gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:  # it exists, run by another user
        return False
    return False


async def stale_groups(bus: EventBus, host: str | None = None) -> list[str]:
    """The servers' consumer groups of ``host`` (this one) whose process is gone. Groups of
    other hosts are not judged: whether their process runs cannot be seen from here."""
    prefix = f"{GROUP_PREFIX}{host or socket.gethostname()}-"
    stale = []
    for group in await bus.groups(MODEL_DEPLOYED):  # every server reads both topics
        pid = group.removeprefix(prefix)
        if group.startswith(prefix) and pid.isascii() and pid.isdigit() and _gone(int(pid)):
            stale.append(group)
    return stale


async def poll(models: RegistryModels, seconds: float) -> None:
    """Refresh every ``seconds`` until cancelled."""
    while True:
        await asyncio.sleep(seconds)
        try:
            await models.refresh()
        except Exception:
            logger.exception("could not read the registry; trying again in %ss", seconds)


async def listen(models: RegistryModels, bus: EventBus, consumer: str | None = None) -> None:
    """Refresh the model each ``model.deployed`` and ``model.rolled_back`` names, until
    cancelled. One reader takes the topics in turn (a bus client is not read by two
    coroutines at once), waiting up to half a second on each. A bus that is away is tried
    again every second and said without flooding, as the workers do (``OutageLog``): its
    first failure, reminders ever further apart, and its end."""
    consumer = consumer or consumer_name()
    group = group_name(consumer)
    outages = OutageLog()
    while True:
        for topic in TOPICS:
            try:
                deliveries = await bus.consume(group, topic, consumer, max_events=16, wait=0.5)
                for delivery in deliveries:
                    await models.refresh(delivery.event.key or None)
                    await bus.ack(delivery)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                _failed(outages, topic, exc)
                await asyncio.sleep(1.0)
            else:
                lasted = outages.recovered(topic)
                if lasted is not None:
                    logger.warning(
                        "reading promotions from the bus again, after %.0fs without", lasted
                    )


def _failed(outages: OutageLog, topic: str, exc: Exception) -> None:
    """Say a failed read once per outage, then as reminders; a failure that is not an
    outage (a bug) with its traceback, as often as an outage line would be."""
    said = outages.failed(topic)
    trace = not isinstance(exc, BackendError)
    if said == "started":
        logger.warning(
            "could not read %s from the bus (%s); polling the registry goes on, and the bus is "
            "tried again every second",
            topic,
            exc,
            exc_info=trace,
        )
    elif said == "still":
        logger.warning(
            "still cannot read promotions from the bus after %.0fs: %s",
            outages.lasted,
            exc,
            exc_info=trace,
        )
