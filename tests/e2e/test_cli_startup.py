"""``ls`` and ``show`` answer at once: on a home holding an ingested batch and its run,
listing and showing them imports the settings and the metadata store (SQLAlchemy) and
nothing else heavy: no learning library, no pyarrow, and no Alembic (a store at head is
told by one read of its version table). Asserted by the modules imported, not by timing;
bench/bench_cli_startup.py measures the time."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from gristmill.testing.cli import cli_stdout as gm
from gristmill.testing.cli import modules_imported
from gristmill.testing.data import housing_table, write_csv

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
    "yaml",
    "gristmill.config.spec",
    "gristmill.stages",
    "gristmill.training",
    "gristmill.features.prepare",
    "gristmill.features.pipeline",
    "gristmill.servables",
    "gristmill.cli.learning",
)


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder whose home holds one ingested batch (and the run that ingested it)."""
    where = tmp_path_factory.mktemp("startup")
    write_csv(where / "housing.csv", housing_table(200))
    gm("ingest", "housing.csv", cwd=where)
    return where


def _heavy(modules: list[str]) -> list[str]:
    return [h for h in HEAVY if any(m == h or m.startswith(f"{h}.") for m in modules)]


def _newest(home: Path, kind: str, key: str) -> str:
    found: str = json.loads(gm("ls", kind, "--json", "--limit", "1", cwd=home))[0][key]
    return found


@pytest.mark.parametrize(("kind", "shown"), [("batches", "housing"), ("runs", "adhoc")])
def test_ls_imports_only_what_reading_the_metadata_store_needs(
    home: Path, kind: str, shown: str
) -> None:
    printed, modules = modules_imported("ls", kind, cwd=home)
    assert shown in printed
    assert _heavy(modules) == []
    assert "sqlalchemy" in modules  # the metadata store is read, for real


@pytest.mark.parametrize(("kind", "key"), [("batches", "batch_id"), ("runs", "run_id")])
def test_show_imports_only_what_reading_the_metadata_store_needs(
    home: Path, kind: str, key: str
) -> None:
    object_id = _newest(home, kind, key)
    printed, modules = modules_imported("show", object_id[:10], cwd=home)
    assert object_id in printed
    assert _heavy(modules) == []
