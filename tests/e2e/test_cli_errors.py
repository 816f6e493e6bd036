"""Errors that never crash: wrong inputs get one clear message on stderr and a non-zero
exit, with the user's own text (paths, YAML, spec values) shown exactly as it is.

One case runs ``gristmill`` as a process; the others call its entry point in this process
(``run_cli_here``: parsing, error display and exit codes included)."""

from __future__ import annotations

from pathlib import Path

import pytest

from gristmill.testing.cli import run_cli
from gristmill.testing.cli import run_cli_here as gm_here

BRACKETS = "data/[/oops].csv"


@pytest.fixture
def bracketed(tmp_path: Path) -> Path:
    """A folder holding ``data/[/oops].csv``, a CSV whose third row has a field too few."""
    (tmp_path / "data" / "[").mkdir(parents=True)
    (tmp_path / BRACKETS).write_text("a,b\n1,2\n3\n")
    return tmp_path


def _one_line(text: str) -> str:
    return " ".join(text.split())


def test_ingesting_a_path_with_brackets_names_it_verbatim(bracketed: Path) -> None:
    result = run_cli("ingest", BRACKETS, cwd=bracketed)
    assert result.returncode == 1, result.stderr
    assert "MarkupError" not in result.stderr and "Traceback" not in result.stderr
    assert f"{bracketed / BRACKETS}, row 3: expected 2 fields, found 1" in _one_line(result.stderr)


def test_predicting_a_missing_path_with_brackets_names_it(
    bracketed: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = gm_here(
        "predict",
        "birds",
        "data/[/nope].csv",
        cwd=bracketed,
        monkeypatch=monkeypatch,
        capsys=capsys,
    )
    assert code == 2 and "error: no file data/[/nope].csv" in err


def test_scoring_into_a_folder_with_brackets_names_it(
    bracketed: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = gm_here(
        "score",
        "birds",
        BRACKETS,
        "--out",
        "out/[/x].csv",
        cwd=bracketed,
        monkeypatch=monkeypatch,
        capsys=capsys,
    )
    assert code == 2
    assert "cannot write out/[/x].csv: the folder out/[ does not exist" in _one_line(err)


def test_a_yaml_error_with_brackets_comes_out_verbatim(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "p.yaml").write_text("name: p\nsources: [a, [b\n")
    code, _, err = gm_here("run", "p.yaml", cwd=tmp_path, monkeypatch=monkeypatch, capsys=capsys)
    assert code == 2
    assert "p.yaml: line 3, column 1 is not valid YAML" in err
    assert "    sources: [a, [b\n" in err and "expected ',' or ']', but got '<stream end>'" in err


def test_a_spec_value_with_brackets_is_quoted_verbatim(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "p.yaml").write_text(
        "name: p\nsources:\n  a: {format: csv, path: '[/a].csv', schedule: '[/x] [bold]'}\n"
    )
    code, _, err = gm_here("run", "p.yaml", cwd=tmp_path, monkeypatch=monkeypatch, capsys=capsys)
    assert code == 2
    assert "sources.a.schedule: '[/x] [bold]' is not a cron expression" in err
