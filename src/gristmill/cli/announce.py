"""Announcing a deployment on the bus from a command: a bus out of reach is a warning."""

from __future__ import annotations

from typing import Any

import typer

from gristmill.cli.console import err_console
from gristmill.cli.settings import settings_from
from gristmill.errors import GristmillError


def announce(ctx: typer.Context, event_type: str, model: str, payload: dict[str, Any]) -> bool:
    """Publish one ``event_type`` event keyed by ``model`` so running servers switch now.

    A bus that cannot be reached is a warning, not a failure: the change is stored already,
    and servers also read the registry every ``serve.poll_seconds``. ``True`` if published.
    """
    import asyncio

    from gristmill.core.events import Event
    from gristmill.runtime.wiring import build_bus

    settings = settings_from(ctx)

    async def publish() -> None:
        bus = build_bus(settings)
        await bus.open()
        try:
            await bus.publish([Event(type=event_type, key=model, payload=payload)])
        finally:
            await bus.close()

    try:
        asyncio.run(publish())
    except GristmillError as exc:
        err_console.print(
            f"warning: could not announce {event_type} of {model} on the bus ({exc}); running "
            f"servers pick it up within serve.poll_seconds ({settings.serve.poll_seconds}s)",
            style="yellow",
            highlight=False,
        )
        return False
    return True
