"""A fitted feature pipeline to bytes and back, with skops: never plain pickle.

skops records the type of every object it stores and builds nothing it is not told to
trust. ``loads`` trusts only types from scikit-learn, NumPy, SciPy, pandas and gristmill
(plus the module prefixes given in ``also_trust``, e.g. the package of a custom step); any
other type in the bytes is refused with a ``DataError`` that lists it, before anything is
built. Bytes that are not a skops file are a ``DataError`` too.
"""

from __future__ import annotations

from collections.abc import Iterable

import skops.io as sio

from gristmill.core.trusted import trusted_loads
from gristmill.core.trusted import untrusted_types as core_untrusted_types
from gristmill.features.pipeline import FittedFeaturePipeline

TRUSTED_MODULES = ("sklearn", "numpy", "scipy", "pandas", "gristmill")
MEDIA_TYPE = "application/vnd.gristmill.feature-pipeline+skops"


def dumps(pipeline: FittedFeaturePipeline) -> bytes:
    """The skops bytes of ``pipeline``."""
    data: bytes = sio.dumps(pipeline)
    return data


def loads(data: bytes, *, also_trust: Iterable[str] = ()) -> FittedFeaturePipeline:
    """The fitted pipeline in ``data``, built only if every type in it is trusted."""
    loaded: FittedFeaturePipeline = trusted_loads(
        data,
        FittedFeaturePipeline,
        what="feature pipeline",
        modules=(*TRUSTED_MODULES, *also_trust),
        hint="pass also_trust=[...] to trust a custom step's package",
    )
    return loaded


def untrusted_types(data: bytes) -> list[str]:
    """The types in ``data`` that skops does not trust by default (full names)."""
    return core_untrusted_types(data, what="feature pipeline")
