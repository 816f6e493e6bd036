"""Errors that never crash: wrong inputs get one clear message on stderr and a non-zero
exit, with the user's own text (paths, YAML, spec values) shown exactly as it is.

One case runs ``gristmill`` as a process; the others call its entry point in this process
(``run_cli_here``: parsing, error display and exit codes included)."""

from __future__ import annotations

import os
import subprocess
import sys
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


@pytest.mark.parametrize(
    ("encoding", "expected"),
    [
        ("latin-1", "p.yaml is not UTF-8 text: byte 0xe9 at offset 9 (line 1, perhaps Latin-1"),
        ("utf-16", "p.yaml is not UTF-8 text: byte 0xff at offset 0 (line 1, perhaps UTF-16)"),
    ],
)
def test_a_spec_not_in_utf8_is_named_with_its_first_stray_byte(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    encoding: str,
    expected: str,
) -> None:
    (tmp_path / "p.yaml").write_bytes("name: caf\u00e9\nsources: {}\n".encode(encoding))
    code, out, err = gm_here("run", "p.yaml", cwd=tmp_path, monkeypatch=monkeypatch, capsys=capsys)
    assert code == 2 and not out
    assert f"error: {expected}" in err and "save it as UTF-8" in err
    assert "UnicodeDecodeError" not in err


def test_a_csv_not_in_utf8_is_named_with_its_row(tmp_path: Path) -> None:
    (tmp_path / "cities.csv").write_bytes("name,city\nann,Zürich\n".encode("latin-1"))
    result = run_cli("ingest", "cities.csv", cwd=tmp_path)
    assert result.returncode == 1
    assert "cities.csv, row 2, column 'city' is not UTF-8 text: byte 0xfc" in _one_line(
        result.stderr
    )


@pytest.mark.parametrize(
    ("variable", "meant"),
    [("GRISTMILL_BUSS__BACKEND", "GRISTMILL_BUS__BACKEND"), ("GRISTMILL_HOMEE", "GRISTMILL_HOME")],
)
def test_a_misspelt_settings_variable_stops_the_command(
    tmp_path: Path, variable: str, meant: str
) -> None:
    environ = {k: v for k, v in os.environ.items() if not k.startswith("GRISTMILL_")}
    done = subprocess.run(
        [sys.executable, "-m", "gristmill", "ls", "runs"],
        cwd=tmp_path,
        env={**environ, variable: "redis"},
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 2 and not done.stdout
    assert f"{variable}: names no setting; did you mean {meant}?" in done.stderr
    assert not (tmp_path / ".gristmill").exists()  # nothing ran on SQLite instead


def test_a_misspelt_section_in_gristmill_toml_stops_the_command(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "gristmill.toml").write_text('[buss]\nbackend = "redis"\n')
    code, _, err = gm_here("ls", "runs", cwd=tmp_path, monkeypatch=monkeypatch, capsys=capsys)
    assert code == 2 and "buss: unknown key; did you mean bus?" in err


DOWN_BUS = ("--bus", "redis", "--bus-url", "redis://127.0.0.1:1/0")
WRONG = {  # each verb, given something wrong
    "run": ("run", "missing.yaml"),
    "ingest": ("ingest", "nothing-here"),
    "send": ("send", "clicks", "missing.jsonl"),
    "prepare": ("prepare", "missing.yaml"),
    "lookup": ("lookup", "no_such_set", "e1"),
    "split": ("split", "missing.yaml"),
    "train": ("train", "missing.yaml"),
    "evaluate": ("evaluate", "missing.yaml"),
    "worker": ("worker", "--stage", "trainin"),
    "schedules": ("--home", "/proc/no/such/home", "schedules"),
    "ls": ("ls", "nonsense"),
    "show": ("show", "nope"),
    "lineage": ("lineage", "nope"),
    "doctor": (*DOWN_BUS, "doctor", "--timeout", "1"),
    "gc": ("gc", "--older-than", "soon"),
    "promote": ("promote", "nope", "--model", "m"),
    "models": ("models", "nosuchmodel"),
    "deploy": ("deploy", "nosuch", "1"),
    "rollback": ("rollback", "nosuch"),
    "deployments": ("deployments", "nosuch"),
    "predict": ("predict", "m", "missing.csv"),
    "compile": ("compile", "nosuch"),
    "package": ("package", "nosuch", "--out", "packaged"),
    "score": ("score", "m", "missing.csv"),
    "jobs": ("jobs", "nope"),
    "serve": ("serve", "--model", "nosuch", "--port", "1"),
    "monitor": ("monitor", "nosuch"),
    "drift": ("drift", "nosuch", "--since", "soon"),
    "feedback": ("feedback", "missing.csv"),
    "dead-letters": ("dead-letters", "show", "nope"),
}


def test_every_verb_has_a_wrong_input_case() -> None:
    from gristmill.cli.app import VERBS

    assert set(VERBS) == set(WRONG)


@pytest.mark.parametrize("verb", sorted(WRONG))
def test_a_verb_given_something_wrong_says_so_on_stderr_and_exits_non_zero(
    verb: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    code, out, err = gm_here(*WRONG[verb], cwd=tmp_path, monkeypatch=monkeypatch, capsys=capsys)
    assert code in (1, 2), (code, out, err)
    said = err.strip().splitlines()[-1]
    assert said.startswith("error: ") or said.startswith("Error: "), err
    assert "Traceback" not in err + out and "unexpected" not in err
    if verb != "doctor":  # (its report, on stdout, marks each backend ✓ or ✗)
        assert "error" not in out.lower()  # the failure is not on stdout


@pytest.mark.parametrize(
    ("args", "said"),
    [
        (("drift", "nosuch"), "no model named 'nosuch' in the registry"),
        (("drift", "nosuch", "--version", "99"), "no model named 'nosuch' in the registry"),
        (("feedback", "labels.csv", "--model", "nosuch"), "no model named 'nosuch'"),
        (("monitor", "nosuch", "--chart", "."), "--chart . is a folder"),
        (("monitor", "nosuch", "--chart", "x.gif"), "'.gif' is not a picture format"),
    ],
)
def test_unknown_models_and_unusable_charts_are_named(
    args: tuple[str, ...],
    said: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    (tmp_path / "labels.csv").write_text("request_id,actual\nr1,1\n")
    code, out, err = gm_here(*args, cwd=tmp_path, monkeypatch=monkeypatch, capsys=capsys)
    assert code in (1, 2) and not out, (code, out, err)
    assert said in " ".join(err.split()) and "Traceback" not in err and "unexpected" not in err


@pytest.mark.parametrize(
    ("args", "said"),
    [
        (("serve", "--workers", "0"), "error: --workers 0 is no number of server processes"),
        (("serve", "--port", "99999"), "error: --port 99999 is not a port"),
    ],
)
def test_serve_refuses_unusable_numbers_in_its_own_words(
    args: tuple[str, ...],
    said: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """One ``error: …`` line as every verb says it, not click's ``Error: Invalid value``."""
    code, out, err = gm_here(*args, cwd=tmp_path, monkeypatch=monkeypatch, capsys=capsys)
    assert code in (1, 2) and not out, (code, out, err)
    assert err.strip().startswith(said), err
