"""Read-only verbs in a folder where nothing ever ran: "nothing here yet" with a hint, and
nothing created on disk (no .gristmill folder, no SQLite file)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from gristmill.testing.cli import run_cli_here

LISTINGS = [
    ["ls", "runs"],
    ["ls", "batches"],
    ["ls", "candidates"],
    ["models"],
    ["deployments"],
    ["schedules"],
    ["jobs"],
    ["dead-letters", "ls"],
]
NAMING = [
    ["show", "01M8ZC4FEGY2PNS08XCNQW0FJ1"],
    ["lineage", "penguins"],
    ["monitor", "churn"],
    ["drift", "churn"],
    ["lookup", "customers", "1"],
    ["jobs", "01M8ZC4FEGY2PNS08XCNQW0FJ1"],
    ["dead-letters", "show", "01M8ZC4FEGY2PNS08XCNQW0FJ1"],
]


@pytest.mark.parametrize("args", LISTINGS, ids=" ".join)
def test_a_listing_says_nothing_here_yet_and_creates_nothing(
    args: list[str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    code, out, err = run_cli_here(*args, cwd=tmp_path, monkeypatch=monkeypatch, capsys=capsys)
    assert (code, err) == (0, "")
    assert "nothing here yet" in out and "gristmill run SPEC" in out
    assert list(tmp_path.iterdir()) == []  # before: .gristmill/ with metadata.db (and bus.db)


@pytest.mark.parametrize("args", [["ls", "runs"], ["models"], ["schedules"]], ids=" ".join)
def test_a_listing_as_json_is_an_empty_list(
    args: list[str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    code, out, err = run_cli_here(
        *args, "--json", cwd=tmp_path, monkeypatch=monkeypatch, capsys=capsys
    )
    assert code == 0 and json.loads(out) == [] and "nothing here yet" in err
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("args", NAMING, ids=" ".join)
def test_a_verb_naming_an_object_fails_saying_nothing_here_yet(
    args: list[str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    code, out, err = run_cli_here(*args, cwd=tmp_path, monkeypatch=monkeypatch, capsys=capsys)
    assert code == 1 and out == ""
    said = " ".join(err.split())
    assert said.startswith("error: ") and "nothing here yet" in said
    assert "gristmill run SPEC" in said
    assert list(tmp_path.iterdir()) == []
