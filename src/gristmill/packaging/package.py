"""``write_package``: a registered version as a directory that serves it alone.

The directory holds the compiled servable and its manifest (``servables.directory``), the
lock of its dependencies (``lock``), an entry point, a Dockerfile and a README
(``templates``). It is written atomically: into a temporary sibling first, loaded back
from there (every digest checked, the model built) and only then renamed to ``out`` — a
failure leaves nothing half-written, and ``--force`` replaces an old package only once the
new one is whole.
"""

from __future__ import annotations

import json
import shutil
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from gristmill import __version__
from gristmill.errors import ConfigError
from gristmill.features.stores import FeatureStores
from gristmill.packaging import templates
from gristmill.packaging.lock import ROOTS, distributions_of, lock
from gristmill.servables.directory import INDEX, load_directory, write_servable
from gristmill.servables.loading import CHAMPION, load_servable, parse_ref, resolve_version
from gristmill.servables.port import ServableManifest

LOCK = "requirements.txt"
WHEELS = "wheels"


@dataclass(frozen=True)
class Package:
    """What was written: where, for which servable, each file and its size in bytes, what
    the lock could not pin (a requirement not installed here) and ``local``: the packages
    of custom code the servable loads that no installed distribution provides (they must
    be installed beside the package by hand)."""

    path: Path
    manifest: ServableManifest
    files: dict[str, int]
    unpinned: tuple[str, ...]
    local: tuple[str, ...]

    @property
    def size(self) -> int:
        return sum(self.files.values())


def parse_model(text: str) -> tuple[str, int | str]:
    """``name`` (its champion), ``name@alias``, ``name/3`` or ``name:3``."""
    if ":" in text and "@" not in text:
        name, number = text.rsplit(":", 1)
        if not (name and number.isascii() and number.isdigit()):
            raise ConfigError(
                f"{text!r}: a model version is NAME:NUMBER or NAME/NUMBER, e.g. churn:3"
            )
        text = f"{name}/{number}"
    name, which = parse_ref(text)
    if not name or (isinstance(which, str) and not which):
        raise ConfigError(f"{text!r} names no model: give NAME, NAME@ALIAS or NAME:VERSION")
    return name, which


def check_out(out: Path, *, force: bool) -> None:
    """``ConfigError`` unless ``out`` may be written: absent, empty, or ``force``."""
    if out.exists() and not out.is_dir():
        raise ConfigError(f"--out {out} is a file; name a directory to write the package to")
    if out.is_dir() and any(out.iterdir()) and not force:
        raise ConfigError(
            f"--out {out} exists and is not empty; choose another directory or pass --force "
            "to replace it"
        )


def write_package(
    stores: FeatureStores,
    model: str,
    out: Path,
    *,
    force: bool = False,
    wheels: Sequence[Path] = (),
) -> Package:
    """Package the version ``model`` names into ``out`` (see the module docstring)."""
    check_out(out, force=force)
    for wheel in wheels:
        if not wheel.is_file() or wheel.suffix != ".whl":
            raise ConfigError(f"--wheel {wheel}: no such wheel file (a .whl built by pip wheel)")
    name, which = parse_model(model)
    version = resolve_version(stores, name, which)
    manifest = load_servable(stores, name, version.version).manifest  # compiled if need be
    out.parent.mkdir(parents=True, exist_ok=True)
    temporary = out.parent / f".{out.name}.{uuid.uuid4().hex[:8]}.tmp"
    try:
        temporary.mkdir()
        index = write_servable(stores, version, manifest.digest, temporary)
        alias = which if isinstance(which, str) and which != CHAMPION else None
        installed, local = distributions_of(index["trust"])
        pinned = lock([*ROOTS, *manifest.libraries, *installed])
        facts = templates.Facts(manifest, __version__)
        index |= {
            "alias": alias,
            "asked": model,
            "gristmill": __version__,
            "python": facts.python,
            "created_at": datetime.now(UTC).isoformat(),
        }
        header = (
            f"{manifest.ref}: what its {manifest.kind} servable needs, pinned to the versions\n"
            f"installed where it was packaged (gristmill {__version__}, Python {facts.python})."
        )
        _write(temporary / INDEX, json.dumps(index, indent=2, sort_keys=True) + "\n")
        _write(temporary / LOCK, pinned.text(header))
        _write(temporary / "serve.py", templates.entry_point(facts))
        _write(temporary / "Dockerfile", templates.dockerfile(facts))
        _write(temporary / "README.md", templates.readme(facts))
        (temporary / WHEELS).mkdir()
        (temporary / WHEELS / ".keep").touch()
        for wheel in wheels:
            shutil.copy2(wheel, temporary / WHEELS / wheel.name)
        load_directory(temporary)  # what was written loads, before anyone sees it
        _replace(temporary, out)
    finally:
        shutil.rmtree(temporary, ignore_errors=True)
    files = {
        str(p.relative_to(out)): p.stat().st_size for p in sorted(out.rglob("*")) if p.is_file()
    }
    return Package(out, manifest, files, pinned.missing, tuple(local))


def _write(path: Path, text: str) -> None:
    path.write_text(text, encoding="utf-8")


def _replace(temporary: Path, out: Path) -> None:
    """Rename ``temporary`` to ``out``; an old ``out`` is moved aside first, removed after."""
    old = None
    if out.exists():
        old = out.parent / f".{out.name}.{uuid.uuid4().hex[:8]}.old"
        out.rename(old)
    try:
        temporary.rename(out)
    except OSError:
        if old is not None:
            old.rename(out)
        raise
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)
