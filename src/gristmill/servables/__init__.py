"""Servables: a registered model version compiled once into what the server runs.

The names below are imported on first use (``__getattr__``), not with the package: the
server imports ``servables.loading`` and ``servables.port`` at start, and compiling
(pandas, scikit-learn, ONNX converters) only when a version has to be compiled.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from gristmill.servables.compiling import Compiled, compile_version
    from gristmill.servables.loading import load_servable, parse_ref, resolve_version
    from gristmill.servables.port import (
        InputColumn,
        Parity,
        Predictions,
        Servable,
        ServableManifest,
    )

_WHERE = {
    "Compiled": "compiling",
    "compile_version": "compiling",
    "load_servable": "loading",
    "parse_ref": "loading",
    "resolve_version": "loading",
    "InputColumn": "port",
    "Parity": "port",
    "Predictions": "port",
    "Servable": "port",
    "ServableManifest": "port",
}

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


def __getattr__(name: str) -> Any:
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module 'gristmill.servables' has no attribute {name!r}")
    return getattr(importlib.import_module(f"gristmill.servables.{module}"), name)
