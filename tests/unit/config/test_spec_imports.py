"""Modules next to the spec are importable: ``load_spec`` puts the spec's folder on sys.path.

The end-to-end case runs the real CLI as a subprocess from another working directory, with
no ``PYTHONPATH``: a custom split and an estimator named by import path, both kept beside
the spec, must work in this process and in the local executor's worker processes.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from sklearn.datasets import load_breast_cancer

from gristmill.config.spec import load_spec
from gristmill.testing.cli import cli_stdout

SPEC = """\
name: cancer
sources:
  cancer: {format: parquet, path: cancer.parquet}
features:
  cancer_v1:
    from: [cancer]
    label: target
split: {strategy: custom, custom: "mysplits.s:even_odd"}
train:
  retries: 0
  candidates:
    - {name: mine, algorithm: "mymodels:Shrunk", params: {max_iter: 3000}}
    - {name: tree, algorithm: decision_tree, params: {max_depth: 3}}
"""
SPLITS = """\
import pyarrow as pa


def even_odd(table: pa.Table) -> list[str]:
    return ["train" if row % 2 == 0 else "test" for row in range(table.num_rows)]
"""
MODELS = """\
from sklearn.linear_model import LogisticRegression


class Shrunk(LogisticRegression):
    \"\"\"A classifier only this folder knows.\"\"\"
"""


def write_spec(
    folder: Path, text: str = "name: p\nsources: {s: {format: csv, path: a.csv}}\n"
) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "pipeline.yaml").write_text(text)
    return folder / "pipeline.yaml"


def test_the_spec_folder_goes_first_on_sys_path_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sys, "path", list(sys.path))
    spec = write_spec(tmp_path / "project")
    load_spec(spec)
    where = str((tmp_path / "project").resolve())
    assert sys.path[0] == where
    load_spec(spec)
    assert sys.path.count(where) == 1


def test_a_folder_already_on_sys_path_is_left_where_it_is(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    where = str((tmp_path / "project").resolve())
    monkeypatch.setattr(sys, "path", [*sys.path, where])
    load_spec(write_spec(tmp_path / "project"))
    assert sys.path[-1] == where and sys.path.count(where) == 1


def test_an_invalid_spec_changes_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys, "path", list(sys.path))
    before = list(sys.path)
    with pytest.raises(Exception, match="not a valid pipeline spec"):
        load_spec(write_spec(tmp_path / "bad", "name: p\nsources: {}\nnope: 1\n"))
    assert sys.path == before


def gm(*args: str, cwd: Path) -> str:
    """``gristmill ARGS`` as a subprocess in ``cwd``, with no PYTHONPATH; its stdout."""
    return cli_stdout(*args, cwd=cwd, timeout=240, pythonpath=False)


@pytest.mark.slow
def test_a_custom_split_and_an_estimator_beside_the_spec_train_from_elsewhere(
    tmp_path: Path,
) -> None:
    project, elsewhere = tmp_path / "project", tmp_path / "elsewhere"
    spec = write_spec(project, SPEC)
    (project / "mysplits").mkdir()
    (project / "mysplits" / "__init__.py").write_text("")
    (project / "mysplits" / "s.py").write_text(SPLITS)
    (project / "mymodels.py").write_text(MODELS)
    frame = load_breast_cancer(as_frame=True).frame
    frame.columns = [c.replace(" ", "_") for c in frame.columns]
    frame.to_parquet(project / "cancer.parquet", index=False)
    elsewhere.mkdir()

    gm("ingest", str(project / "cancer.parquet"), "--name", "cancer", cwd=elsewhere)
    gm("prepare", str(spec), cwd=elsewhere)
    out = gm("train", str(spec), "--executor", "local", cwd=elsewhere)
    assert "(train 285 · test 284)" in out  # even rows train, odd rows test
    assert "✓ mine (mymodels:Shrunk) trained" in out
    assert "2 of 2 trained (classification)" in out
    # its model loads again for evaluation: the spec that named the package is trusted
    board = gm("evaluate", str(spec), cwd=elsewhere)
    assert "mine" in board and "untrusted" not in board
