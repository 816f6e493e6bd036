"""Servables: a registered model version compiled once into what the server runs."""

from gristmill.servables.compiling import Compiled, compile_version
from gristmill.servables.loading import load_servable, parse_ref, resolve_version
from gristmill.servables.port import (
    InputColumn,
    Parity,
    Predictions,
    Servable,
    ServableManifest,
)

__all__ = [
    "Compiled",
    "InputColumn",
    "Parity",
    "Predictions",
    "Servable",
    "ServableManifest",
    "compile_version",
    "load_servable",
    "parse_ref",
    "resolve_version",
]
