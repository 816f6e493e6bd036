"""How a command gets the settings of its invocation."""

from __future__ import annotations

import typer

from gristmill.config.settings import Settings, load_settings


def settings_from(ctx: typer.Context) -> Settings:
    """The settings of this invocation, loaded lazily so ``--help`` never fails on them."""
    obj = ctx.find_root().obj
    return load_settings(obj["config"], obj["overrides"])
