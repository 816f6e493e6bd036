"""The CLI answers at once: registering its verbs (what ``--help`` and ``--version`` do
before anything else) imports none of the learning libraries, no settings, no store and
no runtime; each verb imports what it runs when it runs. Asserted by what a fresh
interpreter has imported, not by timing (a loaded machine would make a timing flaky);
bench/bench_cli_startup.py measures the time."""

from __future__ import annotations

from pathlib import Path

import pytest

from gristmill.testing.cli import modules_imported

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
    "sqlalchemy",
    "alembic",
    "pydantic",
    "yaml",
    "fsspec",
    "gristmill.config.settings",
    "gristmill.runtime.wiring",
    "gristmill.stages",
    "gristmill.training",
    "gristmill.features",
    "gristmill.servables",
    "gristmill.backends",
    "gristmill.cli.learning",
)
VERBS = (
    "run", "ingest", "send", "prepare", "lookup", "split", "train", "evaluate", "worker",
    "ls", "show", "lineage", "doctor", "gc", "promote", "models", "deploy", "rollback",
    "deployments", "predict", "compile", "package", "score", "jobs", "serve", "dead-letters",
    "schedules", "monitor", "feedback", "drift",
)  # fmt: skip


def heavy_in(modules: list[str]) -> list[str]:
    """The ``HEAVY`` names among ``modules`` (a package counts with any module in it)."""
    return [h for h in HEAVY if any(m == h or m.startswith(f"{h}.") for m in modules)]


def test_importing_the_cli_imports_no_heavy_library(tmp_path: Path) -> None:
    _, modules = modules_imported(cwd=tmp_path, code="import gristmill.cli.app")
    assert heavy_in(modules) == []


@pytest.mark.parametrize("args", [("--help",), ("--version",)])
def test_help_and_version_answer_without_heavy_libraries(
    args: tuple[str, ...], tmp_path: Path
) -> None:
    printed, modules = modules_imported(*args, cwd=tmp_path)
    assert heavy_in(modules) == []
    assert printed.startswith("gristmill ") if args == ("--version",) else "Usage:" in printed


@pytest.mark.parametrize(
    "verb", ["ls", "show", "score", "train", "run", "worker", "serve", "monitor"]
)
def test_a_verbs_help_imports_nothing_the_verb_runs(verb: str, tmp_path: Path) -> None:
    printed, modules = modules_imported(verb, "--help", cwd=tmp_path)
    # typer checks the parameters of the command it calls with pydantic: its own cost
    assert [h for h in heavy_in(modules) if h != "pydantic"] == []
    assert f"Usage: gristmill {verb}" in printed


def test_help_still_lists_every_verb(tmp_path: Path) -> None:
    printed, _ = modules_imported("--help", cwd=tmp_path)
    listed = {line.split()[0] for line in printed.splitlines() if line.startswith("  ")}
    assert set(VERBS) <= listed, set(VERBS) - listed


def test_the_verb_table_names_what_each_module_registers() -> None:
    from gristmill.cli import app

    registered: dict[str, str] = {}
    for module in dict.fromkeys(app.VERBS.values()):
        registered.update(dict.fromkeys(app.verbs_of(module), module))
    assert registered == app.VERBS
    assert set(app.VERBS) == set(VERBS)


def test_running_a_verb_imports_no_other_verbs_module(tmp_path: Path) -> None:
    _, modules = modules_imported("ls", "--help", cwd=tmp_path)
    others = {f"gristmill.cli.{m}" for m in ("running", "training", "registry", "scoring")}
    assert others.isdisjoint(modules)
