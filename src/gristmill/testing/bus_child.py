"""A child process for the bus contract: consume one event, report it, then hang until killed.

Run as ``python -m gristmill.testing.bus_child '<json>'`` with the JSON from
``BusRecipe.to_json``. It writes one line ``{"id": ..., "attempt": ...}`` to stdout.
"""

from __future__ import annotations

import asyncio
import importlib
import json
import sys
from dataclasses import dataclass, field
from typing import Any, cast

from gristmill.bus.port import Delivery, EventBus


@dataclass(frozen=True)
class BusRecipe:
    """How another process builds the same bus: ``factory`` is ``"module:callable"``."""

    factory: str
    kwargs: dict[str, Any] = field(default_factory=dict)

    def to_json(self, *, group: str, event_type: str) -> str:
        return json.dumps(
            {"factory": self.factory, "kwargs": self.kwargs, "group": group, "type": event_type}
        )

    def build(self) -> EventBus:
        module_name, _, name = self.factory.partition(":")
        factory = getattr(importlib.import_module(module_name), name)
        return cast(EventBus, factory(**self.kwargs))


async def _consume_one_then_hang(order: dict[str, Any]) -> None:
    bus = BusRecipe(order["factory"], order["kwargs"]).build()
    await bus.open()
    deliveries: list[Delivery] = []
    while not deliveries:
        deliveries = await bus.consume(order["group"], order["type"], "child", wait=1.0)
    [delivery] = deliveries
    sys.stdout.write(json.dumps({"id": delivery.event.id, "attempt": delivery.attempt}) + "\n")
    sys.stdout.flush()
    await asyncio.Event().wait()


def main(argv: list[str]) -> None:
    asyncio.run(_consume_one_then_hang(json.loads(argv[1])))


if __name__ == "__main__":
    main(sys.argv)
