"""``gristmill doctor``: the settings in force (secrets masked) and whether each backend answers."""

from __future__ import annotations

import asyncio
import importlib.util
from typing import Annotated

import fsspec
import typer
from rich.table import Table

from gristmill.cli.console import console
from gristmill.cli.settings import settings_from
from gristmill.config.settings import Settings
from gristmill.core.urls import mask_url
from gristmill.errors import GristmillError
from gristmill.runtime.wiring import build_bus, build_metadata

EXTRAS = {
    "redis": "redis",
    "nats": "nats",
    "postgres": "psycopg",
    "dask": "distributed",
    "serve": "fastapi",
}


async def _check_bus(settings: Settings, timeout: float) -> str:
    bus = build_bus(settings)
    await asyncio.wait_for(bus.open(), timeout)
    await bus.close()
    return "reachable"


def _check_metadata(settings: Settings) -> str:
    store = build_metadata(settings)
    store.open()
    store.close()
    return "reachable, migrations applied"


def _check_raw(settings: Settings) -> str:
    fs, path = fsspec.core.url_to_fs(settings.raw_url())
    fs.makedirs(path, exist_ok=True)
    return "writable"


def _attempt(check: object) -> tuple[bool, str]:
    try:
        result = check() if callable(check) else check
        return True, str(result)
    except (GristmillError, OSError, TimeoutError) as exc:
        return False, str(exc) or type(exc).__name__


def doctor(
    ctx: typer.Context,
    timeout: Annotated[float, typer.Option(help="Seconds to wait for each service.")] = 5.0,
) -> None:
    """Print the resolved settings (passwords masked) and check every configured backend.

    Exits 1 if a backend cannot be reached, so scripts can use it as a readiness check.
    """
    settings = settings_from(ctx)
    settings.home.mkdir(parents=True, exist_ok=True)
    table = Table("role", "backend", "where", "status")
    checks = [
        (
            "bus",
            settings.bus.backend,
            settings.bus_url(),
            lambda: asyncio.run(_check_bus(settings, timeout)),
        ),
        (
            "metadata",
            settings.metadata.backend,
            settings.metadata_url(),
            lambda: _check_metadata(settings),
        ),
        ("raw", "parquet", settings.raw_url(), lambda: _check_raw(settings)),
    ]
    healthy = True
    for role, backend, url, check in checks:
        ok, message = _attempt(check)
        healthy &= ok
        table.add_row(
            role, backend, mask_url(url), f"[green]✓ {message}[/]" if ok else f"[red]✗ {message}[/]"
        )
    console.print(table)
    console.print(
        f"home: {settings.home} · bus namespace: {settings.bus.namespace} · "
        f"max attempts: {settings.bus.max_attempts} · ack wait: {settings.bus.ack_wait}s · "
        f"executor: {settings.executor.backend}",
        highlight=False,
    )
    extras = [
        f"{name} {'✓' if importlib.util.find_spec(module) else '✗'}"
        for name, module in EXTRAS.items()
    ]
    console.print("extras installed: " + " · ".join(extras), highlight=False)
    if not healthy:
        raise typer.Exit(1)


def register(app: typer.Typer) -> None:
    app.command(rich_help_panel="Inspect")(doctor)
