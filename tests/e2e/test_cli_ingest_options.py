"""``gristmill ingest PATH`` says which type it read each column as, and takes
``--delimiter`` and ``--columns`` (the names of a CSV file without a header row);
``lookup`` of a feature set whose spec keeps no online view says so."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

from gristmill.testing.cli import run_cli
from gristmill.testing.cli import run_cli_here as gm_here

Cli = Callable[..., tuple[int, str, str]]


@pytest.fixture
def gm(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> Cli:
    """``gristmill ARGS`` in ``tmp_path``, in this process: (exit code, stdout, stderr)."""

    def call(*args: str) -> tuple[int, str, str]:
        return gm_here(*args, cwd=tmp_path, monkeypatch=monkeypatch, capsys=capsys)

    return call


def _schema(gm: Cli, source: str) -> list[tuple[str, str]]:
    """The Arrow types of the columns of ``source``'s newest batch, as recorded."""
    code, out, err = gm("ls", "batches", "--json")
    assert code == 0, err
    batch = next(b for b in json.loads(out) if b["source"] == source)
    return [(c["name"], c["type"]) for c in batch["schema"]]


def test_ingest_says_the_types_it_inferred(tmp_path: Path, gm: Cli) -> None:
    (tmp_path / "people.csv").write_text("name,age,height,born\nann,31,1.7,1990-01-02\n")
    code, out, err = gm("ingest", "people.csv")
    assert code == 0, err
    assert (
        "types of people: name string · age int64 · height float64 · born date "
        "(inferred from the data; a spec's `columns:` declares them)"
    ) in out


def test_a_semicolon_file_is_read_with_its_delimiter(tmp_path: Path, gm: Cli) -> None:
    (tmp_path / "sales.txt").write_text("id;amount\n1;3.5\n2;4\n")
    code, out, err = gm("ingest", "sales.txt", "--format", "csv", "--delimiter", ";")
    assert code == 0, err
    assert "types of sales: id int64 · amount float64" in out
    assert _schema(gm, "sales") == [("id", "int64"), ("amount", "double")]


def test_a_headerless_file_is_read_with_the_names_given(tmp_path: Path, gm: Cli) -> None:
    (tmp_path / "export.tsv").write_text("1\tann\t3.5\n2\tbob\t4\n")
    code, out, err = gm(
        "ingest",
        "export.tsv",
        "--format",
        "csv",
        "--delimiter",
        "\\t",
        "--columns",
        "id,name,amount",
    )
    assert code == 0, err
    assert "types of export: id int64 · name string · amount float64" in out
    code, out, _ = gm("ls", "batches", "--json")
    assert json.loads(out)[0]["row_count"] == 2  # the first line is data


def test_names_for_a_file_that_has_a_header_are_refused(tmp_path: Path, gm: Cli) -> None:
    (tmp_path / "people.csv").write_text("id,name\n1,ann\n")
    code, _, err = gm("ingest", "people.csv", "--columns", "id,name")
    assert code == 1
    assert "people.csv: row 1 is a header ('id,name')" in " ".join(err.split())


@pytest.mark.parametrize(
    ("option", "value", "said"),
    [
        ("--delimiter", ";;", "--delimiter: the delimiter must be one character"),
        ("--columns", "id,id", "--columns: names 'id' more than one column"),
    ],
)
def test_wrong_options_are_named_as_options(
    tmp_path: Path,
    gm: Cli,
    option: str,
    value: str,
    said: str,
) -> None:
    (tmp_path / "people.csv").write_text("1,ann\n")
    code, _, err = gm("ingest", "people.csv", option, value)
    assert code == 2 and "cannot ingest people.csv:" in err and said in err


def test_the_options_are_for_a_path_not_a_source_of_a_spec(tmp_path: Path, gm: Cli) -> None:
    (tmp_path / "pipeline.yaml").write_text("name: p\nsources:\n  s: {format: csv, path: s.csv}\n")
    code, _, err = gm("ingest", "s", "--delimiter", ";")
    assert code == 2 and "set `delimiter:` or `names:` under sources.s" in err


SPEC = """\
name: people
sources:
  people: {format: csv, path: people.csv}
features:
  people_v1:
    from: [people]
    entity: id
    steps: []
"""


def test_lookup_of_a_set_without_an_online_view_says_how_to_keep_one(tmp_path: Path) -> None:
    (tmp_path / "people.csv").write_text("id,age\na1,31\na2,40\n")
    (tmp_path / "p.yaml").write_text(SPEC)
    run_cli("run", "p.yaml", cwd=tmp_path, check=True)
    result = run_cli("lookup", "people_v1", "a1", cwd=tmp_path)
    assert result.returncode == 1 and not result.stdout
    said = " ".join(result.stderr.split())
    assert "feature set 'people_v1' has no online view" in said
    assert "add `online: {ttl: 1d}` there" in said
    (tmp_path / "p.yaml").write_text(SPEC + "    online: {ttl: 1d}\n")
    run_cli("run", "p.yaml", cwd=tmp_path, check=True)
    found = json.loads(run_cli("lookup", "people_v1", "a1", cwd=tmp_path, check=True).stdout)
    assert found["entities"]["a1"]["status"] == "found"


def test_ingest_reads_a_tsv_path_with_a_tab(tmp_path: Path, gm: Cli) -> None:
    (tmp_path / "sales.tsv").write_text("shop\tamount\na\t1\n")
    code, _, err = gm("ingest", "sales.tsv")  # before: cannot tell the format of 'sales.tsv'
    assert code == 0, err
    assert _schema(gm, "sales") == [("shop", "string"), ("amount", "int64")]
