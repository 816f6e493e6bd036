"""How a command gets the settings of its invocation."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

import typer

from gristmill.cli.console import console, err_console
from gristmill.errors import ConfigError, NotFoundError

if TYPE_CHECKING:  # loaded when a verb runs, not when the CLI starts (`--help` stays fast)
    from gristmill.config.settings import Settings
    from gristmill.stores.metadata import MetadataReader, MetadataStore


def settings_from(ctx: typer.Context) -> Settings:
    """The settings of this invocation, loaded lazily so ``--help`` never fails on them,
    and once: a verb asking again gets the same."""
    from gristmill.config.settings import load_settings

    obj = ctx.find_root().obj
    if "settings" not in obj:
        obj["settings"] = load_settings(obj["config"], obj["overrides"])
    settings: Settings = obj["settings"]
    return settings


@contextmanager
def opened_metadata(ctx: typer.Context) -> Iterator[MetadataStore]:
    """The metadata store of this invocation's settings, open for the block."""
    from gristmill.runtime.wiring import build_metadata, make_home

    settings = settings_from(ctx)
    make_home(settings)
    store = build_metadata(settings)
    store.open()
    try:
        yield store
    finally:
        store.close()


@contextmanager
def read_metadata(ctx: typer.Context) -> Iterator[MetadataReader]:
    """The read side of this invocation's metadata store, open for the block: on SQLite, a
    reader that imports no SQLAlchemy (``runtime.wiring.open_metadata_reader``)."""
    from gristmill.runtime.wiring import open_metadata_reader

    with open_metadata_reader(settings_from(ctx)) as reader:
        yield reader


NOTHING_YET = (
    "nothing here yet: no gristmill stores in {home} (nothing has run with this home); "
    "start with `gristmill run SPEC` (e.g. gristmill run examples/penguins/pipeline.yaml) "
    "or `gristmill ingest FILE`"
)


def stop_if_nothing_yet(
    ctx: typer.Context, *, listing: bool, as_json: bool = False, missing: str = ""
) -> None:
    """For a read-only verb, before it opens a store: when nothing ever ran with this home
    (no embedded metadata file), say so and stop, creating nothing on disk. A listing says
    it on stdout and exits 0 (``[]`` on stdout with ``--json``, the sentence on stderr); a
    verb naming an object raises ``NotFoundError`` (exit 1) starting with ``missing`` (what
    it did not find). A home whose parent folder does not exist either is a
    ``ConfigError``."""
    from gristmill.runtime.wiring import stores_made

    settings = settings_from(ctx)
    if stores_made(settings):
        return
    _check_home_possible(settings.home)
    text = NOTHING_YET.format(home=settings.home)
    if not listing:
        raise NotFoundError(f"{missing}: {text}" if missing else text)
    if as_json:
        console.print("[]", highlight=False)
        err_console.print(text, highlight=False, soft_wrap=True)
    else:
        console.print(text, highlight=False, soft_wrap=True)
    raise typer.Exit(0)


def _check_home_possible(home: Path) -> None:
    """``ConfigError`` when not even the folder ``home`` would be made in exists: a home
    that far from anything made is a mistake in ``--home``, not a place nothing ran yet."""
    parent = home.absolute().parent
    if parent.is_dir():
        return
    raise ConfigError(
        f"no home folder {home}, nor its parent {parent}: nothing ever ran there; check "
        "--home (or `home` in gristmill.toml)"
    )
