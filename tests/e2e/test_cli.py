"""The CLI as a user meets it: real processes, the example pipeline, wrong inputs."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from gristmill.testing.cli import run_cli as gm
from gristmill.testing.data import housing_table, write_csv, write_lines

ROOT = Path(__file__).parents[2]
EXAMPLE = ROOT / "examples" / "penguins"


@pytest.fixture(scope="module")
def example(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of the example pipeline with its data generated."""
    where = tmp_path_factory.mktemp("example")
    shutil.copy(EXAMPLE / "pipeline.yaml", where / "pipeline.yaml")
    subprocess.run([sys.executable, str(EXAMPLE / "make_data.py")], check=True)
    shutil.copytree(EXAMPLE / "data", where / "data")
    return where


def test_help_teaches_the_verbs(tmp_path: Path) -> None:
    out = gm("--help", cwd=tmp_path, check=True).stdout
    for verb in ("run", "ingest", "worker", "ls", "show", "lineage", "doctor"):
        assert verb in out
    assert "gristmill run examples/penguins/pipeline.yaml" in out


def test_run_example_then_inspect(example: Path) -> None:
    result = gm("run", "pipeline.yaml", cwd=example, check=True)
    assert "succeeded" in result.stdout
    assert "skipped (stages not built yet)" not in result.stdout
    assert "deployed penguins: version 1 is penguins@champion" in result.stdout
    live = gm("deployments", "penguins", cwd=example, check=True).stdout
    assert "1 (100%)" in live and "gristmill:deployment" in live
    assert "leaderboard (f1, test subset)" in result.stdout and "gate: passed" in result.stdout
    candidates = json.loads(gm("ls", "candidates", "--json", cwd=example, check=True).stdout)
    assert {c["name"] for c in candidates} >= {"logreg", "forest", "boosting"}
    shown = gm("show", candidates[0]["candidate_id"], cwd=example, check=True).stdout
    assert "split_id: sp_" in shown and "metrics:" in shown
    assert "penguins_v1" in result.stdout and "wine_v1" in result.stdout
    for source in ("penguins", "wine", "field_notes"):
        assert source in result.stdout
    listing = gm("ls", "batches", cwd=example, check=True).stdout
    assert listing.count("field_notes") == 3  # one batch per file in the folder
    batch_id = next(
        line.split()[1] for line in listing.splitlines() if "wine" in line and "│" in line
    )
    shown = gm("show", batch_id, cwd=example, check=True).stdout
    assert "proline" in shown and "178" in shown  # a wine column; 178 rows
    assert "penguins" in gm("ls", "runs", cwd=example, check=True).stdout
    assert batch_id in gm("lineage", batch_id, cwd=example, check=True).stdout


def test_second_run_recognises_the_same_bytes(example: Path) -> None:
    gm("run", "pipeline.yaml", cwd=example, check=True)
    again = gm("run", "pipeline.yaml", cwd=example, check=True).stdout
    assert "same bytes and options as before" in again
    assert "new" not in [cell.strip() for cell in again.split("│")]


def test_invalid_spec_names_the_key_path(tmp_path: Path) -> None:
    (tmp_path / "p.yaml").write_text("name: p\nsources:\n  c: {format: xlsx, path: c.xlsx}\n")
    result = gm("run", "p.yaml", cwd=tmp_path)
    assert result.returncode == 2
    assert "sources.c.format: 'xlsx' is not one of csv, parquet, jsonl, sql, folder" in (
        result.stderr
    )
    assert "Traceback" not in result.stderr


def test_malformed_csv_fails_naming_row_then_quarantines(tmp_path: Path) -> None:
    (tmp_path / "people.csv").write_text("name,age\nann,31\nbob,40,extra\ncid,29\n")
    failed = gm("ingest", "people.csv", cwd=tmp_path)
    assert failed.returncode == 1
    assert "people.csv" in failed.stdout + failed.stderr
    assert "row 3" in (failed.stdout + failed.stderr).lower().replace("line", "row")
    assert "no batches yet" in gm("ls", "batches", cwd=tmp_path).stdout
    ok = gm("ingest", "people.csv", "--on-bad-rows", "quarantine", cwd=tmp_path, check=True)
    assert "1 (quarantined)" in ok.stdout


@pytest.mark.parametrize("mode", ["fail", "quarantine"])
def test_a_stray_quote_is_refused_with_a_short_message(tmp_path: Path, mode: str) -> None:
    path = write_csv(tmp_path / "housing.csv", housing_table())
    lines = path.read_text().splitlines()
    lines[30] = lines[30].replace(",", ',"', 2).replace(',"', ",", 1)  # a quote opens field 3
    write_lines(path, lines)
    result = gm("ingest", "housing.csv", "--on-bad-rows", mode, cwd=tmp_path)
    output = result.stdout + result.stderr
    assert result.returncode == 1, output
    assert "housing.csv, line 31 (data row 30): a quote opens here and never closes" in output
    assert len(output) < 2000 and "Traceback" not in output
    assert "no batches yet" in gm("ls", "batches", cwd=tmp_path).stdout


def test_unknown_path_or_source_is_explained(tmp_path: Path) -> None:
    result = gm("ingest", "nothing-here", cwd=tmp_path)
    assert result.returncode == 2
    assert "neither an existing path nor a source" in result.stderr


def test_a_missing_file_is_named_as_such_beside_a_spec(tmp_path: Path) -> None:
    spec = "name: shop\nsources:\n  sales: {format: csv, path: data/sales.csv}\n"
    (tmp_path / "pipeline.yaml").write_text(spec)
    for missing in ("data/nope.csv", "nope.csv"):
        result = gm("ingest", missing, cwd=tmp_path)
        assert result.returncode == 2, result.stderr
        message = " ".join(result.stderr.split())
        assert f"file {missing} not found" in message
        assert "not a source of pipeline.yaml either; its sources: sales" in message
    named = gm("ingest", "nope", cwd=tmp_path)
    assert "pipeline.yaml has no source named 'nope'; known: sales" in " ".join(
        named.stderr.split()
    )


def test_doctor_reports_each_backend(tmp_path: Path) -> None:
    ok = gm("doctor", cwd=tmp_path, check=True).stdout
    assert ok.count("✓") >= 3
    down = gm(
        "--bus",
        "redis",
        "--bus-url",
        "redis://127.0.0.1:1/0",
        "doctor",
        "--timeout",
        "2",
        cwd=tmp_path,
    )
    assert down.returncode == 1
    assert "✗" in down.stdout


def test_doctor_masks_passwords(tmp_path: Path) -> None:
    result = gm(
        "--metadata",
        "postgres",
        "--metadata-url",
        "postgresql+psycopg://me:hunter2@127.0.0.1:1/db",
        "doctor",
        "--timeout",
        "1",
        cwd=tmp_path,
    )
    assert "hunter2" not in result.stdout + result.stderr
    assert "***" in result.stdout


def test_worker_rejects_unknown_stage(tmp_path: Path) -> None:
    result = gm("worker", "--stage", "trainin", cwd=tmp_path)
    assert result.returncode == 2
    assert "no stage named 'trainin'" in result.stderr


def test_worker_stops_gracefully_on_sigterm(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GRISTMILL_")}
    proc = subprocess.Popen(
        [sys.executable, "-m", "gristmill", "worker", "--all"],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 30
        assert proc.stdout is not None
        line = ""
        while "ready" not in line and time.monotonic() < deadline:
            line = proc.stdout.readline()
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=30)
    finally:
        proc.kill()
    assert proc.returncode == 0, err
    assert "stopped after handling 0 event(s)" in out


def test_feature_sets_reports_and_online_lookup(example: Path) -> None:
    gm("run", "pipeline.yaml", cwd=example, check=True)
    sets = json.loads(gm("ls", "feature-sets", "--json", cwd=example, check=True).stdout)
    penguins = next(s for s in sets if s["name"] == "penguins_v1")
    shown = gm("show", penguins["feature_set_id"], cwd=example, check=True).stdout
    assert "selection: mutual_info kept 6" in shown
    report = gm("show", penguins["validation_report"], cwd=example, check=True).stdout
    assert "bill_length_mm" in report and "numeric" in report
    again = gm("prepare", "pipeline.yaml", "-f", "penguins_v1", cwd=example, check=True).stdout
    assert penguins["feature_set_id"] in again and "already computed" in again
    looked = gm("lookup", "penguins_v1", "p0001", "nobody", cwd=example, check=True).stdout
    found = json.loads(looked.split("\nmissing:")[0])
    assert (found["feature_set_id"], found["used_by"]) == (penguins["feature_set_id"], ["newest"])
    assert found["pipeline"] == penguins["pipeline_artifact"]
    assert found["entities"]["nobody"] == {"status": "missing"}
    p0001 = found["entities"]["p0001"]
    assert (p0001["status"], p0001["feature_set_id"]) == ("found", penguins["feature_set_id"])
    assert {"event_time", "written_at"} <= set(p0001)
    assert set(p0001["values"]) >= {"bill_length_mm", "island_Biscoe"}
    # A model's own vectors: those of the pipeline its bundle names.
    candidates = json.loads(gm("ls", "candidates", "--json", cwd=example, check=True).stdout)
    gm("promote", candidates[0]["candidate_id"][:12], cwd=example, check=True)
    by_model = gm(
        "lookup", "penguins_v1", "p0001", "--model", "penguins@champion", cwd=example, check=True
    ).stdout
    assert json.loads(by_model)["entities"]["p0001"] == p0001
    other = gm("lookup", "penguins_v1", "p0001", "--pipeline", "sha256:" + "0" * 64, cwd=example)
    assert json.loads(other.stdout.split("\nmissing:")[0])["entities"]["p0001"] == {
        "status": "missing"
    }
    wrong = gm("prepare", "pipeline.yaml", "-f", "nope", cwd=example)
    assert wrong.returncode == 2 and "known: penguins_v1, wine_v1" in wrong.stderr


def test_gc_clears_crash_leftovers_and_abandoned_runs(tmp_path: Path) -> None:
    from datetime import UTC, datetime, timedelta

    from gristmill.backends.sql.metadata import SqlMetadataStore
    from gristmill.stores.metadata import Run

    leftover = tmp_path / ".gristmill" / "raw" / "c" / ".tmp-01ABC"
    leftover.mkdir(parents=True)
    os.utime(leftover, (time.time() - 7200, time.time() - 7200))
    with SqlMetadataStore(f"sqlite:///{tmp_path / '.gristmill' / 'metadata.db'}") as store:
        old = datetime.now(UTC) - timedelta(hours=3)
        store.runs.start_run(Run("01OLDRUN", "p", "running", old))
        store.runs.start_run(Run("01NEWRUN", "p", "running", datetime.now(UTC)))
    dry = gm("gc", "--dry-run", cwd=tmp_path, check=True).stdout
    assert "would close abandoned run 01OLDRUN" in dry and leftover.exists()
    done = gm("gc", cwd=tmp_path, check=True).stdout
    assert "1 leftover(s) removed; 1 abandoned run(s)" in done
    assert not leftover.exists()
    runs = json.loads(gm("ls", "runs", "--json", cwd=tmp_path, check=True).stdout)
    assert {r["run_id"]: r["status"] for r in runs} == {"01OLDRUN": "failed", "01NEWRUN": "running"}


def test_gc_deletes_the_bus_groups_of_dead_servers_on_this_host(tmp_path: Path) -> None:
    import asyncio
    import socket

    from gristmill.config.settings import load_settings
    from gristmill.core.events import MODEL_DEPLOYED, Event
    from gristmill.runtime.wiring import build_bus

    ended = subprocess.Popen([sys.executable, "-c", "pass"])
    ended.wait()  # a process that is gone (its pid is not reused this soon)
    host = socket.gethostname()
    dead, alive = f"serve-{host}-{ended.pid}", f"serve-{host}-{os.getpid()}"
    groups = [dead, alive, "serve-elsewhere-1", "worker-group"]
    settings = load_settings(overrides={"home": str(tmp_path / ".gristmill")})
    settings.home.mkdir(parents=True)

    async def consume_then_list(*, consume: bool) -> list[str]:
        bus = build_bus(settings)
        await bus.open()
        try:
            if consume:
                await bus.publish([Event(type=MODEL_DEPLOYED, key="m", payload={})])
                for group in groups:  # each takes the event, as a server would
                    assert await bus.consume(group, MODEL_DEPLOYED, "c", wait=5.0)
            return await bus.groups(MODEL_DEPLOYED)
        finally:
            await bus.close()

    assert asyncio.run(consume_then_list(consume=True)) == sorted(groups)
    dry = gm("gc", "--dry-run", cwd=tmp_path, check=True).stdout
    assert f"would delete bus consumer group {dead}" in dry, dry
    assert asyncio.run(consume_then_list(consume=False)) == sorted(groups)
    done = gm("gc", cwd=tmp_path, check=True).stdout
    assert f"deleted bus consumer group {dead}" in done and alive not in done, done
    assert asyncio.run(consume_then_list(consume=False)) == sorted(set(groups) - {dead})


def test_doctor_masks_the_server_token(tmp_path: Path) -> None:
    (tmp_path / "gristmill.toml").write_text('[serve]\ntoken = "s3cr3t-t0ken"\n')
    result = gm("doctor", "--timeout", "1", cwd=tmp_path)
    assert "s3cr3t-t0ken" not in result.stdout + result.stderr
    assert "serve.token" in result.stdout and "****" in result.stdout
