"""The lock of a package: every distribution its servable needs, pinned to what runs here.

A packaged model must run on another machine exactly as it was checked here, so its
``requirements.txt`` pins, with ``==``, the versions *installed in this environment* of
the roots (gristmill with its ``serve`` extra, the libraries the servable's manifest
names) and of everything they require, transitively — read from ``importlib.metadata``,
markers evaluated for this interpreter and platform (the Dockerfile's base image uses the
same Python minor version). A requirement whose marker holds but which is not installed
here cannot be pinned; it is reported, not guessed.
"""

from __future__ import annotations

import importlib.metadata as packages
from collections.abc import Iterable
from dataclasses import dataclass

from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import canonicalize_name

ROOTS = ("gristmill[serve]",)


@dataclass(frozen=True)
class Lock:
    """``pins``: canonical name → installed version; ``missing``: required, not installed."""

    pins: dict[str, str]
    missing: tuple[str, ...] = ()

    def text(self, header: str) -> str:
        """The lock as a requirements file: ``# header`` lines, then ``name==version``."""
        lines = [f"# {line}" if line else "#" for line in header.splitlines()]
        lines += [f"{name}=={version}" for name, version in sorted(self.pins.items())]
        return "\n".join(lines) + "\n"


def lock(roots: Iterable[str] = ROOTS) -> Lock:
    """The installed closure of ``roots`` (requirement strings, extras allowed)."""
    pins: dict[str, str] = {}
    missing: set[str] = set()
    seen: set[tuple[str, frozenset[str]]] = set()
    todo = [Requirement(root) for root in roots]
    while todo:
        requirement = todo.pop()
        name = canonicalize_name(requirement.name)
        extras = frozenset(requirement.extras)
        if (name, extras) in seen:
            continue
        seen.add((name, extras))
        try:
            distribution = packages.distribution(name)
        except packages.PackageNotFoundError:
            missing.add(name)
            continue
        pins[name] = distribution.version
        todo += _required(distribution.requires or (), extras)
    return Lock(pins, tuple(sorted(missing - set(pins))))


def distributions_of(modules: Iterable[str]) -> tuple[list[str], list[str]]:
    """The installed distributions that provide top-level ``modules`` (a custom step's
    package, say), and the modules no installed distribution provides (local code)."""
    provided = packages.packages_distributions()
    found: list[str] = []
    local: list[str] = []
    for module in modules:
        names = provided.get(module.split(".")[0])
        if names:
            found += names
        else:
            local.append(module)
    return sorted(set(found)), local


def _required(lines: Iterable[str], extras: frozenset[str]) -> list[Requirement]:
    """The requirements of a distribution that apply here with ``extras`` asked for."""
    found = []
    for line in lines:
        try:
            requirement = Requirement(line)
        except InvalidRequirement:
            continue  # a malformed line in someone's metadata: nothing to pin from it
        marker = requirement.marker
        if marker is None:
            found.append(requirement)
            continue
        environments = [{"extra": extra} for extra in extras] or [{"extra": ""}]
        if any(marker.evaluate(env) for env in environments):
            found.append(requirement)
    return found
