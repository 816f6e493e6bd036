"""No traceback ever reaches the user: generated specs (random bytes, random YAML, valid
specs with one value made wrong), settings files and CSV files fed to the CLI get a clear
error or a result, exit code 0, 1 or 2, and nothing the CLI did not foresee.

Hypothesis drives the CLI's entry point in this process (``run_cli_here``: argument
parsing, error display and exit codes included); one case runs the real ``gristmill``
process. Examples are few (each runs a command on real stores): the module takes well
under a minute.
"""

from __future__ import annotations

import copy
import itertools
import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gristmill.testing.cli import run_cli
from gristmill.testing.cli import run_cli_here as gm_here

FUZZ = settings(
    max_examples=20,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
TRICKY = ["[/x]", "[bold]b[/]", "{", "---", "0 2 * * *", "1d", "-1", "café", "\t", "é\x00"]
SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**70), 2**70),
    st.floats(),
    st.text(max_size=12),
    st.sampled_from(TRICKY),
)
KEYS = st.one_of(
    st.text(max_size=8),
    st.sampled_from(["name", "sources", "format", "path", "features", "from", "train"]),
)
TREES = st.recursive(
    SCALARS,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(KEYS, inner, max_size=3),
    max_leaves=10,
)
BASE: dict[str, Any] = {  # valid; its source is missing, so a run stops at ingestion
    "name": "fuzz",
    "sources": {"s": {"format": "csv", "path": "missing.csv", "columns": {"a": "int64"}}},
    "features": {
        "f": {
            "from": ["s"],
            "entity": "id",
            "label": "y",
            "steps": [{"impute": {"columns": ["a"], "strategy": "median"}}],
            "online": {"ttl": "1d"},
        }
    },
    "split": {"strategy": "random", "test_size": 0.3, "seed": 1},
    "train": {"candidates": [{"name": "lr", "algorithm": "logistic_regression"}]},
    "evaluate": {"metric": "f1"},
}
_counter = itertools.count()


def _paths(tree: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every key path of a tree of dicts and lists (the root's children and below)."""
    items = (
        tree.items()
        if isinstance(tree, dict)
        else enumerate(tree)
        if isinstance(tree, list)
        else ()
    )
    found = []
    for key, child in items:
        found.append((*prefix, key))
        found.extend(_paths(child, (*prefix, key)))
    return found


@st.composite
def wrong_specs(draw: st.DrawFn) -> dict[str, Any]:
    """``BASE`` with one value replaced by anything, or removed."""
    spec = copy.deepcopy(BASE)
    path = draw(st.sampled_from(_paths(spec)))
    parent = spec
    for key in path[:-1]:
        parent = parent[key]
    if draw(st.booleans()) and isinstance(parent, dict):
        del parent[path[-1]]
    else:
        parent[path[-1]] = draw(TREES)
    return spec


def _yaml(tree: Any) -> bytes:
    return yaml.safe_dump(tree, allow_unicode=True).encode()


SPEC_FILES = st.one_of(
    st.binary(max_size=200),
    st.text(max_size=200).map(str.encode),
    TREES.map(_yaml),
    wrong_specs().map(_yaml),
    st.tuples(wrong_specs().map(yaml.safe_dump), st.sampled_from(["utf-16", "latin-1"])).map(
        lambda pair: pair[0].encode(pair[1], errors="replace")
    ),
)

SECTIONS = ["bus", "metadata", "raw", "online", "serve", "scoring", "stream", "executor", "buss"]
SETTING_KEYS = [
    "backend", "url", "namespace", "max_attempts", "ack_wait", "port", "workers",
    "partition_rows", "max_rows", "max_seconds", "db_schema", "backedn",
]  # fmt: skip
BACKENDS = ["sqlite", "redis", "postgres", "local", "inline", "redsi", "", "[x]"]
SAFE_URLS = ["", "[/x]", "not a url", "sqlite:///fuzz/m.db", "redis://127.0.0.1:1/0"]


def _toml_value(value: Any) -> str:
    return json.dumps(value) if not isinstance(value, float) else repr(value)


@st.composite
def settings_files(draw: st.DrawFn) -> bytes:
    """A gristmill.toml: random bytes, or sections of known and unknown keys with values
    of any type (URLs only from a few that answer at once: nothing slow to reach)."""
    if draw(st.integers(0, 4)) == 0:
        return draw(st.binary(max_size=120))
    lines = []
    if draw(st.booleans()):
        lines.append(f"home = {_toml_value(draw(st.sampled_from(['x', '', '[/h]', 3])))}")
    for section in draw(st.lists(st.sampled_from(SECTIONS), max_size=3, unique=True)):
        lines.append(f"[{section}]")
        for key in draw(st.lists(st.sampled_from(SETTING_KEYS), max_size=3, unique=True)):
            if key == "url":
                value: Any = draw(st.sampled_from(SAFE_URLS))
            elif key == "backend":
                value = draw(st.sampled_from(BACKENDS))
            else:
                value = draw(st.one_of(st.integers(-5, 10**6), st.floats(), st.text(max_size=8)))
            lines.append(f"{key} = {_toml_value(value)}")
    if draw(st.booleans()):
        lines.append(draw(st.text(max_size=30)))  # often not TOML at all
    return "\n".join(lines).encode("utf-8", errors="replace")


CELLS = st.one_of(st.integers(), st.floats(), st.text(max_size=6), st.sampled_from(['"', "", "é"]))
CSV_FILES = st.one_of(
    st.binary(max_size=300),
    st.lists(st.lists(CELLS.map(str), min_size=1, max_size=4), max_size=6).map(
        lambda rows: "\n".join(",".join(row) for row in rows).encode()
    ),
    st.lists(st.lists(CELLS.map(str), min_size=2, max_size=2), min_size=1, max_size=5).map(
        lambda rows: ("a,b\n" + "\n".join(",".join(r) for r in rows)).encode("latin-1", "replace")
    ),
)
INGEST_OPTIONS = st.sampled_from(
    [(), ("--on-bad-rows", "quarantine"), ("--delimiter", ";"), ("--columns", "a,b")]
)


@pytest.fixture(scope="module")
def where(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One folder (and one home) for every example: stores are made once; a run's
    candidates would train in this process (no pool of workers to start)."""
    folder = tmp_path_factory.mktemp("fuzz")
    (folder / "gristmill.toml").write_text('[executor]\nbackend = "inline"\n')
    return folder


def _fine(code: int, out: str, err: str) -> None:
    assert code in (0, 1, 2), (code, out, err)
    assert "Traceback" not in out + err, err
    # every failure foreseen, explained: not the catch-all line ("error: unexpected
    # KeyError in …; run again with -vv …"); a YAML error may say "unexpected" of the text
    assert "run again with -vv to see the traceback" not in err, err


@settings(FUZZ, max_examples=15)
@given(content=SPEC_FILES)
def test_a_generated_spec_gets_a_result_or_a_clear_error(
    where: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    content: bytes,
) -> None:
    name = f"spec{next(_counter)}.yaml"
    (where / name).write_bytes(content)
    _fine(*gm_here("run", name, cwd=where, monkeypatch=monkeypatch, capsys=capsys))


@FUZZ
@given(content=settings_files())
def test_a_generated_settings_file_gets_a_report_or_a_clear_error(
    where: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    content: bytes,
) -> None:
    name = f"settings{next(_counter)}.toml"
    (where / name).write_bytes(content)
    args = ("--config", name, "doctor", "--timeout", "0.5")
    _fine(*gm_here(*args, cwd=where, monkeypatch=monkeypatch, capsys=capsys))


@FUZZ
@given(content=CSV_FILES, options=INGEST_OPTIONS)
def test_a_generated_csv_file_is_ingested_or_refused_clearly(
    where: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    content: bytes,
    options: tuple[str, ...],
) -> None:
    name = f"data{next(_counter)}.csv"
    (where / name).write_bytes(content)
    _fine(*gm_here("ingest", name, *options, cwd=where, monkeypatch=monkeypatch, capsys=capsys))


def test_the_real_command_on_bytes_that_are_no_spec(tmp_path: Path) -> None:
    (tmp_path / "p.yaml").write_bytes(b"\xff\xfe[\x00/\x00x\x00]\x00\n\x00")
    result = run_cli("run", "p.yaml", cwd=tmp_path)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "p.yaml is not UTF-8 text: byte 0xff at offset 0" in result.stderr
