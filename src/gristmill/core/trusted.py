"""Loading skops bytes safely: build nothing unless every type in them is trusted."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import skops.io as sio

from gristmill.errors import DataError


def is_trusted(name: str, modules: Iterable[str]) -> bool:
    """Whether the full type ``name`` belongs to one of ``modules`` (or a submodule)."""
    return any(name == module or name.startswith(module + ".") for module in modules)


def untrusted_types(data: bytes, *, what: str) -> list[str]:
    """The types in ``data`` that skops does not trust by default (full names)."""
    try:
        names: list[str] = sio.get_untrusted_types(data=data)
    except Exception as exc:
        # Not a zip, or no skops schema inside: skops raises several kinds of errors.
        raise DataError(f"the bytes are not a stored {what}: {exc}") from exc
    return names


def trusted_loads(
    data: bytes, expected: type[Any], *, what: str, modules: Iterable[str], hint: str
) -> Any:
    """The ``expected`` object in skops ``data``, built only if every type is in ``modules``.

    Raises ``DataError`` listing the refused types (with ``hint`` on how to trust more), for
    bytes that are not skops, or for an object of another type.
    """
    trusted = tuple(modules)
    types = untrusted_types(data, what=what)
    refused = sorted(name for name in types if not is_trusted(name, trusted))
    if refused:
        raise DataError(
            f"refusing to load a {what} holding untrusted types: {', '.join(refused)}; "
            f"only types from {', '.join(trusted)} are loaded ({hint})"
        )
    try:
        loaded: Any = sio.loads(data, trusted=types)
    except Exception as exc:
        # skops raises many kinds of errors for damaged content; the cause is chained.
        raise DataError(f"the {what} could not be loaded: {exc}") from exc
    if not isinstance(loaded, expected):
        raise DataError(f"the bytes hold a {type(loaded).__name__}, not a fitted {what}")
    return loaded
