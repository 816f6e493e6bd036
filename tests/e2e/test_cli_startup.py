"""``ls``, ``show`` and ``lineage`` answer at once: on a home holding an ingested batch, its
run and records of every other kind, they import the settings, their own verb's module and
the metadata reader, and nothing else heavy: no learning library, no pyarrow, no Alembic
and — the store being SQLite at the newest revision — no SQLAlchemy either (the reader is
the standard library's sqlite3, ADR 28). Asserted by the modules imported, not by timing;
bench/bench_cli_startup.py measures the time."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from gristmill.backends.sql.metadata import SqlMetadataStore
from gristmill.testing.cli import cli_stdout as gm
from gristmill.testing.cli import modules_imported
from gristmill.testing.data import housing_table, write_csv
from gristmill.testing.metadata_records import (
    make_candidate,
    make_edge,
    make_feature_set,
    make_report,
    make_split,
)

HEAVY = (
    "sklearn",
    "pandas",
    "scipy",
    "skops",
    "statsmodels",
    "optuna",
    "matplotlib",
    "onnxruntime",
    "pyarrow",
    "numpy",
    "duckdb",
    "alembic",
    "sqlalchemy",
    "yaml",
    "gristmill.config.spec",
    "gristmill.stages",
    "gristmill.training",
    "gristmill.features.prepare",
    "gristmill.features.pipeline",
    "gristmill.servables",
    "gristmill.cli.learning",
    "gristmill.cli.running",
    "gristmill.cli.registry",
    "gristmill.backends.sql.metadata",
)
FEATURE_SET = make_feature_set("fs_5a1", name="housing_v1")
CANDIDATE = make_candidate("mc_5b1", feature_set_id="fs_5a1", split_id="sp_5d1")
VALIDATION = make_report("rep_5c1")
LEADERBOARD = make_report(
    "lb_5e1",
    kind="leaderboard",
    subject="sp_5d1",
    body={"metric": "f1", "standings": [{"candidate": "forest", "value": 0.5}]},
)
SPLIT = make_split("sp_5d1", feature_set_id="fs_5a1")
STARTS = ("fs_5a", "mc_5b", "rep_5c", "lb_5e", "sp_5d")  # of the ids above, as a person types


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder whose home holds one ingested batch (and the run that ingested it), and a
    record of each other kind ``show`` shows, written to the store directly."""
    where = tmp_path_factory.mktemp("startup")
    write_csv(where / "housing.csv", housing_table(200))
    gm("ingest", "housing.csv", cwd=where)
    with SqlMetadataStore(f"sqlite:///{where / '.gristmill' / 'metadata.db'}") as store:
        store.feature_sets.add_feature_set(FEATURE_SET)
        store.candidates.save_candidate(CANDIDATE)
        store.reports.add_report(VALIDATION)
        store.reports.add_report(LEADERBOARD)
        store.splits.add_split(SPLIT)
        store.lineage.add_edges([make_edge("fs_5a1", "sp_5d1")])
    return where


def _heavy(modules: list[str]) -> list[str]:
    return [h for h in HEAVY if any(m == h or m.startswith(f"{h}.") for m in modules)]


def _newest(home: Path, kind: str, key: str) -> str:
    found: str = json.loads(gm("ls", kind, "--json", "--limit", "1", cwd=home))[0][key]
    return found


@pytest.mark.parametrize(
    ("kind", "shown"),
    [
        ("batches", "housing"),
        ("runs", "adhoc"),
        ("feature-sets", "fs_5a1"),
        ("candidates", "mc_5b1"),
        ("reports", "lb_5e1"),
    ],
)
def test_ls_imports_only_what_reading_the_metadata_store_needs(
    home: Path, kind: str, shown: str
) -> None:
    printed, modules = modules_imported("ls", kind, cwd=home)
    assert shown in printed
    assert _heavy(modules) == []
    assert "gristmill.backends.sqlite.metadata_reader" in modules  # the store is read, for real


@pytest.mark.parametrize(("kind", "key"), [("batches", "batch_id"), ("runs", "run_id")])
def test_show_imports_only_what_reading_the_metadata_store_needs(
    home: Path, kind: str, key: str
) -> None:
    object_id = _newest(home, kind, key)
    printed, modules = modules_imported("show", object_id[:10], cwd=home)
    assert object_id in printed
    assert _heavy(modules) == []


@pytest.mark.parametrize("start", STARTS)
def test_show_of_every_kind_of_id_imports_nothing_heavy(home: Path, start: str) -> None:
    printed, modules = modules_imported("show", start, cwd=home)
    assert f"{start}1" in printed
    assert _heavy(modules) == []


def test_lineage_imports_nothing_heavy(home: Path) -> None:
    printed, modules = modules_imported("lineage", "fs_5a", cwd=home)
    assert "sp_5d1" in printed
    assert _heavy(modules) == []
