"""``gristmill drift``: a model's drift windows and the newest window's columns, as tables
or JSON; it reads the metadata store alone (no learning library, no pyarrow)."""

from __future__ import annotations

import asyncio
import dataclasses
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pytest

from gristmill.config.settings import load_settings
from gristmill.config.spec import parse_spec
from gristmill.monitoring.profile import DriftReference, profiled
from gristmill.monitoring.reference import record_reference
from gristmill.runtime.wiring import open_services
from gristmill.stages.monitoring import MonitoringStage
from gristmill.testing.cli import modules_imported, run_cli_here
from gristmill.testing.prediction_logs import (
    CHURN,
    CHURN_INPUTS,
    customers,
    manifest_of,
    register_with_reference,
    write_log,
)

T0 = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
SINCE = "5000d"  # the windows are of 2024


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder whose home holds churn/1, a stable window and a drifted one."""
    where = tmp_path_factory.mktemp("drift_cli")

    async def fill() -> None:
        settings = load_settings(overrides={"home": str(where / ".gristmill")})
        async with open_services(settings) as services:
            stores = services.feature_stores()
            register_with_reference(stores)
            stage = MonitoringStage(stores)
            for hour, shape in enumerate([{}, {"shift": 1.0, "plans": (0.1, 0.9)}]):
                columns, prediction = customers(2000, seed=hour, **shape)  # type: ignore[arg-type]
                at = T0 + timedelta(hours=hour)
                stage.handle(write_log(where, CHURN, columns, prediction, at, name=f"h{hour}"))

    asyncio.run(fill())
    return where


def drift(home: Path, monkeypatch: Any, capsys: Any, *args: str) -> tuple[int, str, str]:
    return run_cli_here("drift", *args, cwd=home, monkeypatch=monkeypatch, capsys=capsys)


def test_windows_and_the_newest_windows_columns_are_shown(
    home: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("COLUMNS", "200")
    code, out, err = drift(home, monkeypatch, capsys, "churn", "--since", SINCE)
    assert code == 0, err
    assert "2024-05-01 12:00 to 13:00" in out and "2024-05-01 13:00 to 14:00" in out
    assert "2,000" in out and "3/3" in out
    assert "age (psi " in out and "plan (psi " in out
    assert "churn/1, window from 2024-05-01 13:00 UTC" in out
    assert out.count("drifted") >= 3


def test_json_holds_every_figure(
    home: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = drift(home, monkeypatch, capsys, "churn", "-v", "1", "--since", SINCE, "--json")
    assert code == 0
    stable, shifted = json.loads(out)
    assert (stable["rows"], stable["files"], stable["alerts"]) == (2000, 1, [])
    age = next(c for c in shifted["columns"] if c["column"] == "age")
    assert age["drifted"] and age["method"] == "psi" and age["statistic"] > 0.2
    assert sorted(a["column"] for a in shifted["alerts"]) == ["age", "plan", "prediction"]


def test_nothing_to_show_and_a_bad_duration_are_said_plainly(
    home: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = drift(home, monkeypatch, capsys, "churn")
    assert code == 0 and "no drift windows of churn in the last 1d" in out
    assert "gristmill worker --stage monitoring" in out
    code, out, err = drift(home, monkeypatch, capsys, "churn", "--since", "soon")
    assert code != 0 and "--since" in err and "Traceback" not in err + out


@pytest.mark.parametrize(
    ("args", "said"),
    [
        (("nosuch",), "no model named 'nosuch' in the registry (registered: churn"),
        (("churn", "--version", "99"), "no version 99 of model 'churn'"),
    ],
)
def test_an_unknown_model_or_version_is_an_error(
    home: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    args: tuple[str, ...],
    said: str,
) -> None:
    code, out, err = drift(home, monkeypatch, capsys, *args)
    assert code == 1 and not out, out
    assert said in " ".join(err.split()) and "gristmill models" in err


def test_identifiers_and_ignored_columns_are_shown_as_such(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    manifest = dataclasses.replace(
        manifest_of("shop", 1, {"customer": "string", **CHURN_INPUTS}, classes=["no", "yes"]),
        entity="customer",
    )
    columns, prediction = customers(2000, seed=1)
    columns = {"customer": np.array([f"c{i}" for i in range(2000)], dtype=object), **columns}
    spec = parse_spec(
        {
            "name": "shop",
            "sources": {"customers": {"format": "csv", "path": "customers.csv"}},
            "monitor": {"drift": {"min_rows": 100, "columns": {"plan": {"ignore": True}}}},
        }
    )

    async def fill() -> None:
        settings = load_settings(overrides={"home": str(tmp_path / ".gristmill")})
        async with open_services(settings) as services:
            stores = services.feature_stores()
            version = register_with_reference(stores, manifest)
            inputs = pa.table({name: pa.array(values) for name, values in columns.items()})
            made, skipped = profiled(
                inputs, pa.array(prediction), classes=["no", "yes"], entity="customer"
            )
            ref = DriftReference("shop", 1, 2000, "a test's rows", made, skipped)
            record_reference(stores, version, ref)  # the newest: the one the stage reads
            new_ids = np.array([f"n{i}" for i in range(2000)], dtype=object)
            served = {**columns, "customer": new_ids}
            MonitoringStage(stores, spec).handle(
                write_log(tmp_path, manifest, served, prediction, T0, name="a")
            )

    asyncio.run(fill())
    monkeypatch.setenv("COLUMNS", "250")
    code, out, err = drift(tmp_path, monkeypatch, capsys, "shop", "--since", SINCE)
    assert code == 0, err
    rows = {line.split()[1]: line for line in out.splitlines() if line.startswith("│ ")}
    assert "not judged (identifier)" in rows["customer"] and "entity key" in rows["customer"]
    assert "not judged (ignored by the spec)" in rows["plan"]
    assert "stable" in rows["age"] and "stable" in rows["prediction"]
    code, out, _ = drift(tmp_path, monkeypatch, capsys, "shop", "--since", SINCE, "--json")
    [window] = json.loads(out)
    assert window["skipped"] == {"customer": "an identifier: the entity key"}
    assert [c["column"] for c in window["columns"] if c["ignored"]] == ["plan"]


def test_drift_reads_the_metadata_store_alone(home: Path) -> None:
    printed, modules = modules_imported("drift", "churn", "--since", SINCE, cwd=home)
    assert "drift windows" in printed
    heavy = ("sklearn", "pandas", "scipy", "pyarrow", "numpy", "gristmill.stages", "alembic")
    assert [h for h in heavy if any(m == h or m.startswith(f"{h}.") for m in modules)] == []


def test_monitor_shows_the_last_days_drift_beside_the_serving_figures(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    now = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)

    async def fill() -> None:
        settings = load_settings(overrides={"home": str(tmp_path / ".gristmill")})
        async with open_services(settings) as services:
            stores = services.feature_stores()
            register_with_reference(stores)
            columns, prediction = customers(2000, seed=1, shift=1.0, plans=(0.1, 0.9))
            stage = MonitoringStage(stores)
            stage.handle(write_log(tmp_path, CHURN, columns, prediction, now, name="now"))

    asyncio.run(fill())
    monkeypatch.setenv("COLUMNS", "200")
    code, out, err = run_cli_here(
        "monitor", "churn", "--json", cwd=tmp_path, monkeypatch=monkeypatch, capsys=capsys
    )
    assert code == 0, err
    [window] = json.loads(out)["drift"]
    assert window["rows"] == 2000 and window["version"] == 1
    assert {"age", "plan", "prediction"} <= {a["column"] for a in window["alerts"]}
    code, out, err = run_cli_here(
        "monitor", "churn", cwd=tmp_path, monkeypatch=monkeypatch, capsys=capsys
    )
    assert code == 0, err
    assert "age (psi " in out and "drifted" in out
