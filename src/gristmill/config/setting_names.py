"""Misspelt settings named back: an unknown key or ``GRISTMILL_*`` variable, with the
known name its spelling suggests (``GRISTMILL_BUSS__BACKEND``: did you mean
``GRISTMILL_BUS__BACKEND``?)."""

from __future__ import annotations

import difflib
from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel

PREFIX = "GRISTMILL_"
# variables of that prefix that are not settings: who acts, and what tests and benchmarks read
OTHER_VARIABLES = ("GRISTMILL_ACTOR", "GRISTMILL_TEST_", "GRISTMILL_BENCH_")
README = "see the README's settings example"


def unknown_environment(model: type[BaseModel], environ: Mapping[str, str]) -> list[str]:
    """``GRISTMILL_*`` variables whose first part names no field of ``model``: the settings
    never see them (each section reads only its own variables), so they are found here,
    or a typo would pass silently."""
    sections = {name.upper() for name in model.model_fields}
    unknown = []
    for name in environ:
        upper = name.upper()
        if not upper.startswith(PREFIX) or upper.startswith(OTHER_VARIABLES):
            continue
        if upper.removeprefix(PREFIX).split("__")[0] not in sections:
            unknown.append(name)
    return sorted(unknown)


def unknown_variable(model: type[BaseModel], name: str) -> str:
    """One line on a variable whose first part names no setting, with the one it meant."""
    head, _, rest = name.upper().removeprefix(PREFIX).partition("__")
    close = closest(model, [head.lower()])
    if close is None:
        return f"  {name}: names no setting; {README}"
    meant = PREFIX + close.upper() + (f"__{rest}" if rest else "")
    return f"  {name}: names no setting; did you mean {meant}?"


def problem_line(model: type[BaseModel], error: Any, environ: Mapping[str, str]) -> str:
    """One line on a pydantic ``error`` of the settings ``model``: its key path (or the
    variable that set it) and what is wrong."""
    loc = [str(part) for part in error["loc"]]
    if error["type"] == "extra_forbidden":
        return _unknown_key(model, loc, environ)
    return f"  {'.'.join(loc)}: {str(error['msg']).removeprefix('Value error, ')}"


def closest(model: type[BaseModel], loc: list[str]) -> str | None:
    """The field nearest in spelling to the last part of ``loc``, among its siblings."""
    current: Any = model
    for part in loc[:-1]:
        field = current.model_fields.get(part)
        current = field.annotation if field is not None else None
        if not (isinstance(current, type) and issubclass(current, BaseModel)):
            return None
    close = difflib.get_close_matches(loc[-1].lower(), list(current.model_fields), 1, 0.6)
    return close[0] if close else None


def _unknown_key(model: type[BaseModel], loc: list[str], environ: Mapping[str, str]) -> str:
    close = closest(model, loc)
    wanted = (PREFIX + "__".join(loc)).upper()
    variable = next((name for name in environ if name.upper() == wanted), None)
    if variable is not None:
        meant = (PREFIX + "__".join([*loc[:-1], close])).upper() if close else None
        return f"  {variable}: names no setting; " + (f"did you mean {meant}?" if meant else README)
    hint = f"did you mean {'.'.join([*loc[:-1], close])}?" if close else "check its spelling"
    return f"  {'.'.join(loc)}: unknown key; {hint} ({README})"
