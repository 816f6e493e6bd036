"""``gristmill score`` scores a whole input by partition on the local executor's processes,
with a summary naming bad rows and where the scores are; ``gristmill jobs`` shows the jobs;
wrong inputs get one clear line, never a traceback."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow.parquet as pq
import pytest

from gristmill.testing.cli import cli_stdout as gm
from gristmill.testing.cli import found, modules_imported, running_worker
from gristmill.testing.cli import run_cli_here as gm_here
from gristmill.testing.registered import birds_spec, penguins

pytestmark = pytest.mark.slow

SPEC = birds_spec(drop_year=False, score={"model": "birds", "source": "penguins"})
SETTINGS = """\
[executor]
workers = 2
[scoring]
partition_rows = 100
"""
Cli = Callable[..., tuple[int, str, str]]


@pytest.fixture(scope="module")
def where(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("score")
    frame = penguins()
    frame.to_csv(folder / "penguins.csv", index=False)
    new = frame.drop(columns=["species"])
    new.to_parquet(folder / "new.parquet", index=False)
    bad = new.astype({"body_mass_g": object})
    bad.loc[[2, 300], "body_mass_g"] = "heavy"
    bad.to_csv(folder / "bad.csv", index=False)
    new.drop(columns=["island"]).to_csv(folder / "no_island.csv", index=False)
    (folder / "birds.yaml").write_text(SPEC)
    (folder / "gristmill.toml").write_text(SETTINGS)
    summary = gm("run", "birds.yaml", cwd=folder)
    assert "skipped" not in summary or "score" not in summary.split("skipped")[-1]
    gm("promote", found(r"(mc_\w{24})", summary), "--model", "birds", cwd=folder)
    return folder


@pytest.fixture
def cli(where: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> Cli:
    def run(*args: str) -> tuple[int, str, str]:
        return gm_here(*args, cwd=where, monkeypatch=monkeypatch, capsys=capsys)

    return run


def test_score_writes_the_store_and_the_out_file_and_says_where(cli: Cli, where: Path) -> None:
    code, out, err = cli("score", "birds", "new.parquet", "--out", "scored.parquet")
    assert code == 0, err
    assert "scored 344 row(s) of new.parquet with birds (version 1)" in out
    job = found(r"job (\w{26})", out)
    assert f"scores: .gristmill/scores/{job} and scored.parquet" in out
    scored = pq.read_table(where / "scored.parquet").to_pandas()
    assert sorted(scored["row"]) == list(range(344))
    assert (
        scored["penguin_id"].tolist()
        == pd.read_parquet(where / "new.parquet")["penguin_id"].tolist()
    )
    assert {"prediction", "p_Adelie", "job_id", "model", "version", "input_id"} <= set(scored)
    assert set(scored["input_id"]) == {"new.parquet"} and set(scored["job_id"]) == {job}
    assert [p.name for p in where.iterdir() if p.name.startswith(".scored")] == []

    code, out, err = cli("jobs")
    assert code == 0 and job in out and "succeeded" in out and "4/4" in out
    code, out, err = cli("jobs", job, "--json")
    shown = json.loads(out)
    assert (shown["state"], shown["rows"], shown["progress"]) == (
        "succeeded",
        344,
        {"done": 4, "total": 4},
    )


def test_an_onnx_version_scores_a_file_without_the_learning_libraries(where: Path) -> None:
    """Its servable is one ONNX graph (pipeline and learner): scoring a Parquet or CSV file
    loads ONNX Runtime, pyarrow and numpy, not scikit-learn, SciPy, skops or the fitted
    pipeline. (pandas comes with pyarrow's conversions to numpy, which import it.)"""
    assert json.loads(gm("compile", "birds", "--json", cwd=where))["kind"] == "onnx"
    learning = ("sklearn", "scipy", "skops", "statsmodels", "optuna", "matplotlib")
    ours = ("gristmill.features.pipeline", "gristmill.features.prepare", "gristmill.training")
    for source in ("new.parquet", "penguins.csv"):
        printed, modules = modules_imported("score", "birds", source, cwd=where)
        assert f"scored 344 row(s) of {source}" in printed
        loaded = [
            m for m in (*learning, *ours) if any(n == m or n.startswith(f"{m}.") for n in modules)
        ]
        assert loaded == []
        assert "onnxruntime" in modules


def test_out_copies_every_partition_as_csv_and_json_lines(cli: Cli, where: Path) -> None:
    code, _, err = cli("score", "birds", "new.parquet", "--out", "scored.csv")
    assert code == 0, err
    as_csv = pd.read_csv(where / "scored.csv")
    code, _, err = cli("score", "birds", "new.parquet", "--out", "scored.jsonl")
    assert code == 0, err
    lines = (where / "scored.jsonl").read_text().splitlines()
    as_json = pd.DataFrame([json.loads(line) for line in lines])
    for copy in (as_csv, as_json):  # 4 partitions of 100 rows, one header, in order
        assert copy["row"].tolist() == list(range(344))
        assert copy["penguin_id"].tolist()[:2] == ["p0000", "p0001"]
        assert set(copy["input_id"]) == {"new.parquet"} and set(copy["model"]) == {"birds"}


def test_a_job_id_given_again_finishes_that_job_and_must_match_it(cli: Cli, where: Path) -> None:
    code, _, err = cli("score", "birds", "new.parquet", "--job", "nightly-1")
    assert code == 0, err
    folder = where / ".gristmill" / "scores" / "nightly-1"
    (folder / "_manifest.json").unlink()  # as if it had been stopped before its end
    (folder / "part-00003.parquet").unlink()
    code, _, err = cli("score", "birds", "new.parquet", "--job", "nightly-1", "-o", "all.csv")
    assert code == 0, err
    rows = pq.read_table(folder).column("row").to_pylist()
    assert sorted(rows) == list(range(344))
    # --out holds the partitions committed before too, in order (copied from the store)
    assert pd.read_csv(where / "all.csv")["row"].tolist() == list(range(344))
    code, _, err = cli("score", "birds", "bad.csv", "--job", "nightly-1")
    assert code != 0 and "job nightly-1 scores new.parquet with birds" in err, err
    code, _, err = cli("score", "birds", "new.parquet", "--job", "../x")
    assert code != 0 and "a job id is 1 to 64 letters" in err, err


def test_bad_rows_are_named_in_the_summary(cli: Cli) -> None:
    code, out, err = cli("score", "birds/1", "bad.csv")
    assert code == 0, err
    assert "scored 342 row(s)" in out
    assert "2 bad row(s) not scored" in out
    assert "row 2 (penguin_id=p0002)" in out and "row 300 (penguin_id=p0300)" in out


def test_a_source_and_a_feature_set_are_scored(cli: Cli) -> None:
    for source in ("source:penguins", "feature_set:penguins_v1"):
        code, out, err = cli("score", "birds@champion", source)
        assert code == 0, err
        assert f"scored 344 row(s) of {source}" in out


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("nobody", "new.parquet"), "no model named 'nobody' is registered"),
        (("birds/7", "new.parquet"), "no version 7 of model 'birds'"),
        (("birds", "missing.csv"), "no file missing.csv"),
        (("birds", "birds.yaml"), "cannot score birds.yaml"),
        (("birds", "no_island.csv"), "lacks column(s) island"),
    ],
)
def test_wrong_inputs_are_one_clear_line(cli: Cli, args: tuple[str, ...], message: str) -> None:
    _, before, _ = cli("jobs", "--json")
    code, out, err = cli("score", *args)
    assert code != 0
    assert message in err and "Traceback" not in err + out
    if message != "lacks column(s) island":  # knowable before a job: none is recorded
        assert not out.strip()
        assert cli("jobs", "--json")[1] == before


SCHEDULED = """\
name: birds_hourly
sources:
  penguins: {format: csv, path: penguins.csv}
score: {model: birds, source: penguins, on: schedule, every: 1s}
"""


def test_a_worker_scores_on_a_schedule_without_a_person(cli: Cli, where: Path) -> None:
    (where / "scheduled.yaml").write_text(SCHEDULED)

    def fired_job() -> dict[str, Any] | None:
        code, out, err = cli("schedules", "--json")
        assert code == 0, err
        (view,) = [v for v in json.loads(out) if v["schedule"]["key"] == "birds_hourly/score"]
        return view if view["state"] == "succeeded" else None

    with running_worker(
        where, "--stage", "scheduler", "--stage", "scoring", "--spec", "scheduled.yaml"
    ):
        deadline = time.monotonic() + 120
        while (view := fired_job()) is None and time.monotonic() < deadline:
            time.sleep(0.2)
    assert view is not None, "no scheduled job succeeded within 120 s"
    job = view["fired"]["ref"]
    assert view["fired"]["model"] == "birds/1"
    code, out, _ = cli("jobs", job, "--json")
    shown = json.loads(out)
    assert (shown["state"], shown["rows"], shown["model"]) == ("succeeded", 344, "birds/1")
    code, out, _ = cli("schedules")
    assert code == 0 and "birds_hourly/score" in out and "every 1s" in out and job in out
