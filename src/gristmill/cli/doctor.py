"""``gristmill doctor``: the settings in force (secrets masked) and whether each backend answers."""

from __future__ import annotations

import importlib.util
from collections.abc import Callable
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table
from rich.text import Text

from gristmill.cli.console import console, print_error
from gristmill.cli.settings import settings_from
from gristmill.cli.tables import print_table
from gristmill.core.urls import mask_url
from gristmill.errors import GristmillError

EXTRAS = {
    "redis": "redis",
    "nats": "nats",
    "postgres": "psycopg",
    "dask": "distributed",
    "serve": "fastapi",
}


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

    It changes nothing: no folder or database is created, no migration applied (a store
    not made yet is reported as made at first use, when its folder can be written).
    Exits 1 if a backend cannot be reached, so scripts can use it as a readiness check.
    """
    from gristmill.config.settings import DEFAULT_CONFIG_FILE
    from gristmill.runtime.probes import check_bus, check_folder, check_metadata, check_online

    settings = settings_from(ctx)
    table = Table("role", "backend", "where", "status")
    raw, features, artifacts = (
        settings.raw_url(),
        settings.features_url(),
        settings.artifacts_url(),
    )
    checks: list[tuple[str, str, str, Callable[[], str]]] = [
        ("bus", settings.bus.backend, settings.bus_url(), lambda: check_bus(settings, timeout)),
        (
            "metadata",
            settings.metadata.backend,
            settings.metadata_url(),
            lambda: check_metadata(settings),
        ),
        ("raw", "parquet", raw, lambda: check_folder(raw)),
        ("online", settings.online.backend, settings.online_url(), lambda: check_online(settings)),
        ("features", "parquet", features, lambda: check_folder(features)),
        ("artifacts", "files", artifacts, lambda: check_folder(artifacts)),
    ]
    failed = []
    for role, backend, url, check in checks:
        ok, message = _attempt(check)
        if not ok:
            failed.append(role)
        table.add_row(
            role,
            backend,
            mask_url(url),
            Text(f"✓ {message}", style="green") if ok else Text(f"✗ {message}", style="red"),
        )
    print_table(table, console)
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
    print_table(resolved, console)
    extras = [
        f"{name} {'✓' if importlib.util.find_spec(module) else '✗'}"
        for name, module in EXTRAS.items()
    ]
    console.print("extras installed: " + " · ".join(extras), highlight=False)
    if failed:
        print_error(
            f"{len(failed)} backend(s) failed their check: {', '.join(failed)} (see ✗ above)"
        )
        raise typer.Exit(1)


def register(app: typer.Typer) -> None:
    app.command(rich_help_panel="Inspect")(doctor)
