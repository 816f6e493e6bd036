"""Custom code kept beside pipeline specs: made importable, and read again once it changes.

A spec names custom steps, splits, evaluators and estimators by import path, and the
modules behind them usually live in the spec's folder (``mysteps.py`` beside
``pipeline.yaml``). ``make_importable`` puts that folder on ``sys.path`` and remembers it.

Python imports a module once per process: a long-lived worker that met a bug in
``mysteps.py`` would run the buggy code again after the file was fixed (a dead letter
replayed fails the same way) until restarted. ``ModuleWatch`` notices that the file of such
a module changed and forgets every module of those folders, so the next import reads them
again. Only modules that live directly in a spec's folder (``mysteps``, ``mypkg/…``)
count: installed packages (even a spec kept among them), the standard library and gristmill
itself are never forgotten.

The watch looks at the folder's files, not only at the modules this process imported: a
module only an executor's worker process imports (a custom estimator trained there) is
never in this process's ``sys.modules``, yet a class added to it must be seen by the next
task, which needs fresh executor workers. So the Python files of each spec folder (its
``*.py`` and those of its packages) are stat'ed before each event, and any that changed,
appeared or went away counts.
"""

from __future__ import annotations

import functools
import importlib
import os
import sys
import sysconfig
import threading
from pathlib import Path
from types import ModuleType

_FOLDERS: set[Path] = set()  # the spec folders put on sys.path (sys.path is global too)
_LOCK = threading.Lock()
Stamp = tuple[int, int]  # (mtime in ns, size) of a module's file; (0, -1) when it is gone


def make_importable(folder: Path) -> None:
    """Put ``folder`` first on ``sys.path`` unless it is on it already; remember it as a
    folder of custom code (see ``ModuleWatch``)."""
    where = folder.resolve()
    with _LOCK:
        _FOLDERS.add(where)
        if str(where) not in sys.path:
            sys.path.insert(0, str(where))


def custom_folders() -> set[Path]:
    """The folders ``make_importable`` was given in this process."""
    with _LOCK:
        return set(_FOLDERS)


class _Tops:
    """Which top-level modules are custom, remembered per module object (resolving paths
    for the thousands of modules a worker holds would cost milliseconds per event)."""

    def __init__(self) -> None:
        self.folders: set[Path] = set()
        self.known: dict[str, tuple[int, bool]] = {}

    def custom(self, name: str, module: ModuleType | None, folders: set[Path]) -> bool:
        if folders != self.folders:
            self.folders, self.known = set(folders), {}
        seen = self.known.get(name)
        if seen is None or seen[0] != id(module):
            seen = (id(module), name != "gristmill" and _home(module, folders))
            self.known[name] = seen
        return seen[1]


def custom_modules(tops: _Tops | None = None) -> dict[str, str]:
    """The imported modules that live in a folder of custom code: ``{name: file}``.

    A module counts when its top-level package (or the module itself) sits directly in
    such a folder; its submodules count with it.
    """
    folders = custom_folders() - _installed()
    if not folders:
        return {}
    modules = dict(sys.modules)
    tops = tops or _Tops()
    custom = {
        name
        for name, module in modules.items()
        if "." not in name and tops.custom(name, module, folders)
    }
    found: dict[str, str] = {}
    for name, module in modules.items():
        file = getattr(module, "__file__", None)
        if file and name.partition(".")[0] in custom:
            found[name] = file
    return found


@functools.cache
def _installed() -> frozenset[Path]:
    """Where the standard library and installed packages live: never custom code."""
    paths = sysconfig.get_paths()
    keys = ("stdlib", "platstdlib", "purelib", "platlib")
    return frozenset(Path(paths[key]).resolve() for key in keys)


def _home(module: ModuleType | None, folders: set[Path]) -> bool:
    """Whether top-level ``module`` lies directly in one of ``folders``."""
    file = getattr(module, "__file__", None)
    places = [Path(file)] if file else [Path(p) / "_" for p in getattr(module, "__path__", [])]
    for place in places:
        parent = place.parent
        if place.name == "__init__.py":
            parent = parent.parent
        try:
            if parent.resolve() in folders:
                return True
        except OSError:
            continue
    return False


def _stamp(file: str) -> Stamp:
    try:
        info = os.stat(file)
    except OSError:
        return (0, -1)
    return (info.st_mtime_ns, info.st_size)


def python_files(folder: Path) -> dict[str, Stamp]:
    """The Python files of custom code in ``folder``: its ``*.py`` and, recursively, those
    of its packages (subfolders with an ``__init__.py``); ``{path: stamp}``. Data folders
    beside the spec are not walked."""
    found: dict[str, Stamp] = {}
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return found
    for entry in entries:
        try:
            if entry.name.endswith(".py") and entry.is_file():
                info = entry.stat()
                found[entry.path] = (info.st_mtime_ns, info.st_size)
            elif (
                entry.is_dir()
                and not entry.name.startswith(".")
                and os.path.isfile(os.path.join(entry.path, "__init__.py"))
            ):
                found.update(python_files(Path(entry.path)))
        except OSError:
            continue
    return found


class ModuleWatch:
    """Which custom modules changed on disk since this process imported them, or since the
    Python files beside the specs were first seen (see the module's docstring).

    ``note`` records the file of each custom module not seen before, and the Python files
    of each spec folder not seen before (call it before and after work that may import
    some); ``changed`` lists the modules (or files) changed since — a file that appeared or
    went away included; ``forget`` drops every custom module from ``sys.modules`` so the
    next import reads the files again, and starts over. A module or folder first noted
    after work that began before a file's last change may have been read before that
    change: pass the work's start (``since``, as ``time.time()``) and it counts as changed,
    to be safe.
    """

    def __init__(self) -> None:
        self._seen: dict[str, tuple[str, Stamp]] = {}
        self._files: dict[Path, dict[str, Stamp]] = {}  # spec folder -> its Python files
        self._doubtful: set[str] = set()
        self._tops = _Tops()

    def note(self, *, since: float | None = None) -> None:
        for name, file in custom_modules(self._tops).items():
            if name in self._seen:
                continue
            stamp = _stamp(file)
            self._seen[name] = (file, stamp)
            if since is not None and stamp[0] >= since * 1e9:
                self._doubtful.add(name)
        for folder in custom_folders() - _installed():
            if folder in self._files:
                continue
            files = self._files[folder] = python_files(folder)
            if since is not None:
                self._doubtful.update(
                    _module_name(folder, file)
                    for file, stamp in files.items()
                    if stamp[0] >= since * 1e9
                )

    def changed(self) -> list[str]:
        moved = {name for name, (file, stamp) in self._seen.items() if _stamp(file) != stamp}
        for folder, files in self._files.items():
            now = python_files(folder)
            if now != files:
                moved.update(
                    _module_name(folder, file)
                    for file in files.keys() | now.keys()
                    if files.get(file) != now.get(file)
                )
        return sorted(moved | self._doubtful)

    def forget(self) -> list[str]:
        """Drop every custom module from ``sys.modules``; the names dropped."""
        names = sorted(custom_modules(self._tops))
        for name in names:
            sys.modules.pop(name, None)
        self._seen.clear()
        self._files.clear()
        self._doubtful.clear()
        importlib.invalidate_caches()
        return names


def _module_name(folder: Path, file: str) -> str:
    """The module a Python file of ``folder`` holds (``mypkg.sub`` for ``mypkg/sub.py``)."""
    parts = list(Path(file).relative_to(folder).with_suffix("").parts)
    if parts[-1] == "__init__" and len(parts) > 1:
        parts.pop()
    return ".".join(parts)
