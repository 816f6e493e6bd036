"""Import paths: the one place a ``package.module:name`` string becomes the object it names.

Two forms are accepted:

* ``package.module:name`` — the module before the colon, the attribute after it, which may
  itself be dotted (``package.module:Class.factory``);
* ``package.module.name`` — the last dotted part is the attribute, the rest the module.

Every failure is a ``ConfigError`` whose message names the path, what it was meant to be and
how to fix it, and tells apart a malformed path, a module that does not exist, a module that
exists but needs a package that is not installed, a module whose own code failed, and an
attribute the module lacks. Given ``install``, a missing package is a ``MissingExtraError``
carrying that command instead. Importing a path runs that module's code: a path in a spec is
trusted like code.
"""

from __future__ import annotations

import difflib
import importlib
import pkgutil
from typing import Any

from gristmill.errors import ConfigError, MissingExtraError


def split_import_path(path: str) -> tuple[str, tuple[str, ...]] | None:
    """``(module, attribute parts)`` of ``path``, or ``None`` if it is not an import path."""
    if path.count(":") > 1:
        return None
    if ":" in path:
        module, _, attribute = path.partition(":")
    else:
        module, _, attribute = path.rpartition(".")
    modules, attributes = module.split("."), attribute.split(".")
    if not all(part.isidentifier() for part in (*modules, *attributes)):
        return None
    return module, tuple(attributes)


def import_object(
    path: str,
    *,
    what: str,
    kind: str = "",
    hint: str = "",
    install: str | None = None,
) -> Any:
    """The object ``path`` names, importing its module (and so running its code).

    ``what`` names the role in messages (``"feature step"``, ``"redis bus backend"``),
    ``kind`` the attribute expected (``"class"``, ``"function"``), ``hint`` says what a
    valid target looks like (appended where the path names the wrong thing: malformed, or
    no such attribute), and ``install`` is the command that provides a missing package:
    given, a missing module is a ``MissingExtraError`` saying to run it. Every other failure
    is a ``ConfigError``, the cause chained. The caller checks the object itself (a class,
    a callable, an estimator).
    """
    parsed = split_import_path(path)
    if parsed is None:
        name = kind or "name"
        raise ConfigError(
            _say(
                f"{what} {path!r} is not an import path; write it as "
                f"'package.module:{name}' or 'package.module.{name}'",
                hint,
            )
        )
    module_name, attributes = parsed
    found = _import_module(path, module_name, what=what, install=install)
    owner = f"module {module_name!r}"
    for depth, part in enumerate(attributes):
        try:
            found = getattr(found, part)
        except AttributeError:
            noun = f"{kind} " if kind and depth == len(attributes) - 1 else ""
            raise ConfigError(
                _say(
                    f"cannot import {what} {path!r}: {owner} has no {noun}{part!r}"
                    f"{_did_you_mean(part, dir(found))}",
                    hint,
                )
            ) from None
        owner = repr(f"{module_name}:{'.'.join(attributes[: depth + 1])}")
    return found


def _import_module(path: str, module_name: str, *, what: str, install: str | None) -> Any:
    try:
        return importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        missing = exc.name or module_name
        if install:
            raise MissingExtraError(
                f"{what} {path!r} needs the {missing} package, which is not installed; "
                f"install it with: {install}"
            ) from exc
        if missing == module_name or module_name.startswith(f"{missing}."):
            raise ConfigError(
                f"cannot import {what} {path!r}: no module named {missing!r}"
                f"{_did_you_mean_module(missing)}; check the spelling, and that the package "
                "providing it is installed in this environment"
            ) from exc
        raise ConfigError(
            f"cannot import {what} {path!r}: module {module_name!r} needs {missing!r}, "
            f"which is not installed; install the package that provides {missing!r}"
        ) from exc
    except ImportError as exc:  # a dependency is there but broken or of another version
        raise ConfigError(
            f"cannot import {what} {path!r}: importing {module_name!r} failed: {exc}"
        ) from exc
    except Exception as exc:  # the module's own code failed; retrying will not heal it
        raise ConfigError(
            f"cannot import {what} {path!r}: module {module_name!r} raised "
            f"{type(exc).__name__} while being imported: {exc}"
        ) from exc


def _did_you_mean(name: str, candidates: list[str]) -> str:
    public = [candidate for candidate in candidates if not candidate.startswith("_")]
    close = difflib.get_close_matches(name, public, n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


def _did_you_mean_module(missing: str) -> str:
    parent, _, name = missing.rpartition(".")
    if not parent:
        return ""
    try:
        package = importlib.import_module(parent)
    except Exception:  # the suggestion is a courtesy; the error being raised is the news
        return ""
    places = getattr(package, "__path__", None)
    if places is None:
        return ""
    siblings = [module.name for module in pkgutil.iter_modules(places)]
    close = difflib.get_close_matches(name, siblings, n=1)
    return f" (did you mean {parent + '.' + close[0]!r}?)" if close else ""


def _say(message: str, hint: str) -> str:
    return f"{message}; {hint}" if hint else message
