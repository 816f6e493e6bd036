"""A fitted feature pipeline to bytes and back, with skops: never plain pickle.

skops records the type of every object it stores and builds nothing it is not told to
trust. ``loads`` trusts only types from scikit-learn, NumPy, SciPy, pandas and gristmill
(plus the module prefixes given in ``also_trust``, e.g. the package of a custom step); any
other type in the bytes is refused with a ``DataError`` that lists it, before anything is
built. Bytes that are not a skops file are a ``DataError`` too.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import skops.io as sio

from gristmill.errors import DataError
from gristmill.features.pipeline import FittedFeaturePipeline

TRUSTED_MODULES = ("sklearn", "numpy", "scipy", "pandas", "gristmill")
MEDIA_TYPE = "application/vnd.gristmill.feature-pipeline+skops"


def dumps(pipeline: FittedFeaturePipeline) -> bytes:
    """The skops bytes of ``pipeline``."""
    data: bytes = sio.dumps(pipeline)
    return data


def loads(data: bytes, *, also_trust: Iterable[str] = ()) -> FittedFeaturePipeline:
    """The fitted pipeline in ``data``, built only if every type in it is trusted."""
    modules = (*TRUSTED_MODULES, *also_trust)
    types = untrusted_types(data)
    refused = sorted(name for name in types if not _trusted(name, modules))
    if refused:
        raise DataError(
            f"refusing to load a feature pipeline holding untrusted types: {', '.join(refused)}; "
            f"only types from {', '.join(modules)} are loaded (pass also_trust=[...] to trust "
            "a custom step's package)"
        )
    try:
        loaded: Any = sio.loads(data, trusted=types)
    except Exception as exc:
        # skops raises many kinds of errors for damaged content; the cause is chained.
        raise DataError(f"the feature pipeline could not be loaded: {exc}") from exc
    if not isinstance(loaded, FittedFeaturePipeline):
        raise DataError(f"the bytes hold a {type(loaded).__name__}, not a fitted feature pipeline")
    return loaded


def untrusted_types(data: bytes) -> list[str]:
    """The types in ``data`` that skops does not trust by default (full names)."""
    try:
        names: list[str] = sio.get_untrusted_types(data=data)
    except Exception as exc:
        # Not a zip, or no skops schema inside: skops raises several kinds of errors.
        raise DataError(f"the bytes are not a stored feature pipeline: {exc}") from exc
    return names


def _trusted(name: str, modules: Iterable[str]) -> bool:
    return any(name == module or name.startswith(module + ".") for module in modules)
