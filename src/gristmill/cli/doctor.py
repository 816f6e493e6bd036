"""``gristmill doctor``: the settings in force (secrets masked) and whether each backend answers."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table
from rich.text import Text

from gristmill.cli.console import console
from gristmill.cli.settings import settings_from
from gristmill.core.urls import mask_url
from gristmill.errors import GristmillError

if TYPE_CHECKING:  # settings and backends are imported when `doctor` runs
    from gristmill.config.settings import Settings

EXTRAS = {
    "redis": "redis",
    "nats": "nats",
    "postgres": "psycopg",
    "dask": "distributed",
    "serve": "fastapi",
}


async def _check_bus(settings: Settings, timeout: float) -> str:
    import asyncio

    from gristmill.runtime.wiring import build_bus

    bus = build_bus(settings)
    await asyncio.wait_for(bus.open(), timeout)
    await bus.close()
    return "reachable"


def _check_metadata(settings: Settings) -> str:
    from gristmill.runtime.wiring import build_metadata

    store = build_metadata(settings)
    store.open()
    store.close()
    return "reachable, migrations applied"


def _check_raw(settings: Settings) -> str:
    return _check_folder(settings.raw_url())


def _check_folder(url: str) -> str:
    import fsspec

    fs, path = fsspec.core.url_to_fs(url)
    fs.makedirs(path, exist_ok=True)
    return "writable"


def _check_online(settings: Settings) -> str:
    from gristmill.runtime.wiring import build_online

    store = build_online(settings)
    store.open()
    store.close()
    return "reachable"


def _attempt(check: object) -> tuple[bool, str]:
    try:
        result = check() if callable(check) else check
        return True, str(result)
    except TimeoutError:
        return False, "no answer in time (is the URL right, and the service up?)"
    except ImportError as exc:
        return False, f"a driver is missing: {exc} (pip install the package named)"
    except Exception as exc:  # doctor reports every failure instead of raising it
        return False, mask_text(f"{type(exc).__name__}: {exc}") if not isinstance(
            exc, GristmillError
        ) else mask_text(str(exc))


def _flatten(tree: dict[str, object], prefix: str = "") -> list[tuple[str, object]]:
    rows: list[tuple[str, object]] = []
    for key, value in tree.items():
        if isinstance(value, dict):
            rows += _flatten(value, f"{prefix}{key}.")
        else:
            rows.append((f"{prefix}{key}", value))
    return rows


def mask_text(text: str) -> str:
    """``text`` with any URL password in it masked."""
    return " ".join(mask_url(word) if "://" in word else word for word in text.split(" "))


def doctor(
    ctx: typer.Context,
    timeout: Annotated[float, typer.Option(help="Seconds to wait for each service.")] = 5.0,
) -> None:
    """Print the resolved settings (passwords masked) and check every configured backend.

    Exits 1 if a backend cannot be reached, so scripts can use it as a readiness check.
    """
    import asyncio

    from gristmill.config.settings import DEFAULT_CONFIG_FILE

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
        ("online", settings.online.backend, settings.online_url(), lambda: _check_online(settings)),
        (
            "features",
            "parquet",
            settings.features_url(),
            lambda: _check_folder(settings.features_url()),
        ),
        (
            "artifacts",
            "files",
            settings.artifacts_url(),
            lambda: _check_folder(settings.artifacts_url()),
        ),
    ]
    healthy = True
    for role, backend, url, check in checks:
        ok, message = _attempt(check)
        healthy &= ok
        table.add_row(
            role,
            backend,
            mask_url(url),
            Text(f"✓ {message}", style="green") if ok else Text(f"✗ {message}", style="red"),
        )
    console.print(table)
    source = ctx.find_root().obj["config"] or (
        DEFAULT_CONFIG_FILE if Path(DEFAULT_CONFIG_FILE).is_file() else "none (defaults)"
    )
    console.print(f"settings file: {source}; then GRISTMILL_* environment, then flags")
    resolved = Table("setting", "value", title="resolved settings", title_justify="left")
    for key, value in _flatten(settings.model_dump(mode="json")):
        shown = mask_text(str(value)) if "url" in key else str(value)
        if key.endswith("token") and value:
            shown = "****"  # a bearer token is a secret
        resolved.add_row(key, shown)
    console.print(resolved)
    extras = [
        f"{name} {'✓' if importlib.util.find_spec(module) else '✗'}"
        for name, module in EXTRAS.items()
    ]
    console.print("extras installed: " + " · ".join(extras), highlight=False)
    if not healthy:
        raise typer.Exit(1)


def register(app: typer.Typer) -> None:
    app.command(rich_help_panel="Inspect")(doctor)
