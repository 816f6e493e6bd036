"""Custom modules beside specs: which modules count, and noticing that their files changed."""

from __future__ import annotations

import importlib
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

import gristmill
from gristmill.core import user_code
from gristmill.core.user_code import ModuleWatch, custom_modules, make_importable

NAMES = ("gm_uc_single", "gm_uc_pkg", "gm_uc_pkg.sub")


@pytest.fixture
def folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    monkeypatch.setattr(sys, "path", list(sys.path))
    monkeypatch.setattr(user_code, "_FOLDERS", set())
    (tmp_path / "gm_uc_single.py").write_text("VALUE = 1\n")
    (tmp_path / "gm_uc_pkg").mkdir()
    (tmp_path / "gm_uc_pkg" / "__init__.py").write_text("")
    (tmp_path / "gm_uc_pkg" / "sub.py").write_text("VALUE = 'a'\n")
    make_importable(tmp_path)
    yield tmp_path
    for name in NAMES:
        sys.modules.pop(name, None)


def test_modules_in_a_spec_folder_count_and_installed_ones_never(folder: Path) -> None:
    for name in NAMES:
        importlib.import_module(name)
    make_importable(Path(gristmill.__file__).parent.parent)  # a spec beside gristmill's code
    make_importable(Path(pytest.__file__).parent.parent)  # ... or among installed packages
    found = custom_modules()
    assert set(found) == set(NAMES)
    assert found["gm_uc_pkg.sub"] == str(folder / "gm_uc_pkg" / "sub.py")


def test_a_changed_file_is_noticed_and_forgetting_reads_it_again(folder: Path) -> None:
    single = importlib.import_module("gm_uc_single")
    importlib.import_module("gm_uc_pkg.sub")
    watch = ModuleWatch()
    watch.note()
    assert watch.changed() == []
    (folder / "gm_uc_single.py").write_text("VALUE = 22  # fixed\n")
    assert watch.changed() == ["gm_uc_single"]
    assert watch.forget() == sorted(NAMES)  # its neighbours too: they may import it
    assert not any(name in sys.modules for name in NAMES)
    assert importlib.import_module("gm_uc_single").VALUE == 22 != single.VALUE
    watch.note()
    assert watch.changed() == []


def test_a_module_changed_while_work_ran_counts_as_changed(folder: Path) -> None:
    started = time.time() - 5  # the work began before the file's last change
    importlib.import_module("gm_uc_single")
    watch = ModuleWatch()
    watch.note(since=started)  # imported before or after the change? unknown: read it again
    assert watch.changed() == sorted(NAMES)  # the folder's other files were written since too
    fresh = ModuleWatch()
    fresh.note(since=time.time() + 5)
    assert fresh.changed() == []


def test_a_module_this_process_never_imported_counts_when_its_file_changes(folder: Path) -> None:
    # an executor's worker process imports it (a custom estimator): this one never does
    watch = ModuleWatch()
    watch.note()
    assert watch.changed() == []
    assert "gm_uc_single" not in sys.modules
    (folder / "gm_uc_single.py").write_text("VALUE = 1\n\n\nclass Added:\n    pass\n")
    assert watch.changed() == ["gm_uc_single"]
    watch.forget()
    watch.note()
    (folder / "gm_uc_new.py").write_text("")  # a new module, and one gone
    (folder / "gm_uc_pkg" / "sub.py").unlink()
    assert watch.changed() == ["gm_uc_new", "gm_uc_pkg.sub"]


def test_data_beside_the_spec_is_not_watched(folder: Path) -> None:
    (folder / "data").mkdir()
    watch = ModuleWatch()
    watch.note()
    (folder / "data" / "rows.py").write_text("")  # not a package: never imported from here
    (folder / "notes.txt").write_text("")
    assert watch.changed() == []
