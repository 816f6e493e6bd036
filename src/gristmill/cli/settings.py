"""How a command gets the settings of its invocation."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

import typer

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
