"""The learning verbs as a user meets them: split → train → evaluate, and wrong inputs.

The happy path runs real processes (and a worker reacting to what ``train`` announced);
the wrong-input cases call the same entry point in this process (``gristmill.cli.app.main``:
its argument parsing, error display and exit codes), to spare a start-up per case.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from sklearn.datasets import load_breast_cancer
from typer.testing import CliRunner

from gristmill.backends.sql.metadata import SqlMetadataStore
from gristmill.cli.app import app
from gristmill.stores.metadata import StageExecution
from gristmill.testing.cli import found
from gristmill.testing.cli import run_cli as gm
from gristmill.testing.cli import run_cli_here as gm_here

PNG = b"\x89PNG\r\n\x1a\n"
SPEC = """\
name: cancer
sources:
  cancer: {format: parquet, path: cancer.parquet}
features:
  cancer_v1:
    from: [cancer]
    label: target
    steps:
      - standardize: {columns: [mean_radius, mean_texture]}
split: {strategy: stratified, test_size: 0.3, seed: 7}
train:
  retries: 0
  candidates:
"""
GOOD = """\
    - {name: logreg, algorithm: logistic_regression, params: {C: 0.5}}
    - {name: tree, algorithm: decision_tree, params: {max_depth: 3}}
evaluate: {metric: roc_auc, evaluators: [accuracy, f1]}
"""
BAD = "    - {name: typo, algorithm: logistic_regression, params: {C: -1.0}}\n"  # fails to fit


def metadata(where: Path) -> SqlMetadataStore:
    return SqlMetadataStore(f"sqlite:///{where / '.gristmill' / 'metadata.db'}")


@pytest.fixture(scope="module")
def prepared(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder with the breast-cancer data ingested and its feature set prepared."""
    where = tmp_path_factory.mktemp("learning")
    frame = load_breast_cancer(as_frame=True).frame
    frame.columns = [c.replace(" ", "_") for c in frame.columns]
    frame.to_parquet(where / "cancer.parquet", index=False)
    (where / "pipeline.yaml").write_text(SPEC + GOOD)
    (where / "failing.yaml").write_text(SPEC + BAD)
    gm("ingest", "cancer.parquet", "--name", "cancer", cwd=where, check=True)
    gm("prepare", "pipeline.yaml", cwd=where, check=True)
    return where


def test_split_train_evaluate_then_inspect(prepared: Path) -> None:
    split = gm("split", "pipeline.yaml", cwd=prepared, check=True).stdout
    split_id = found(r"split (sp_\w+) of cancer_v1 \(fs_\w+\)", split)
    fs_id = found(r"split sp_\w+ of cancer_v1 \((fs_\w+)\)", split)
    shown = gm("show", fs_id, cwd=prepared, check=True).stdout
    # `prepare` split the rows first: the pipeline was fitted on the 398 training rows only
    assert f"fitted on: the train subset of split {split_id}, 398 rows" in shown
    assert "strategy: stratified · test_size 0.3 · seed 7" in split
    assert re.search(r"train\s*│\s*398\s*│\s*70%", split)
    assert re.search(r"test\s*│\s*171\s*│\s*30%", split)
    assert "no warnings" in split

    out = gm("train", "pipeline.yaml", "--executor", "inline", cwd=prepared, check=True).stdout
    assert "✓ logreg (logistic_regression) trained" in out and "✓ tree (decision_tree)" in out
    assert re.search(r"logreg\s*│\s*logistic_regression\s*│\s*trained\s*│\s*1\s*│", out)
    assert re.search(r"tree\s*│\s*decision_tree\s*│\s*trained\s*│\s*1\s*│", out)
    assert "2 of 2 trained (classification) on fs_" in out
    assert f"split {split_id} (train 398 · test 171)" in out  # the split `split` recorded
    train_run = found(r"; run (\w{26})", out)

    evaluated = gm("evaluate", "pipeline.yaml", cwd=prepared, check=True).stdout
    assert f"evaluated 2 candidate(s) on the test subset of split {split_id}" in evaluated
    assert "leaderboard (roc_auc, test subset)" in evaluated
    best = found(r"1\s*│\s*(\w+) ★", evaluated)
    assert re.search(r"2\s*│\s*(logreg|tree)\s*│", evaluated)
    assert "gate: passed" in evaluated
    pictures = prepared / found(r"pictures \(PNG\), a folder per candidate: (\S+)", evaluated)
    for name in ("logreg", "tree"):
        assert (pictures / name / "roc.png").read_bytes()[:8] == PNG
    board_id = found(r"gristmill show (lb_\w+)", evaluated)

    listed = json.loads(gm("ls", "candidates", "--json", cwd=prepared, check=True).stdout)
    mine = {c["name"]: c for c in listed if c["name"] in ("logreg", "tree")}
    assert {c["status"] for c in mine.values()} == {"trained"}
    assert {c["split_id"] for c in mine.values()} == {split_id}
    assert all(c["artifact"] and {"roc_auc", "f1"} <= set(c["metrics"]) for c in mine.values())
    assert all(c["run_id"] == train_run for c in mine.values())
    with metadata(prepared) as store:
        assert store.splits.get_split(split_id).sizes == {"train": 398, "test": 171}
        board = store.reports.get_report(board_id)
        assert board.kind == "leaderboard" and board.status == "passed"
        assert [s["candidate"] for s in board.body["standings"] if s["best"]] == [best]
        run = store.runs.get_run(train_run)
        assert run.status == "succeeded" and run.summary["command"] == "train"
        assert [o["type"] for o in run.summary["outputs"]] == ["model.trained"]
        assert board.run_id is not None
        assert store.runs.get_run(board.run_id).summary["outputs"][0]["type"] == "model.evaluated"

    # `train` announced model.trained in its run: an evaluation worker finds the spec, and
    # the leaderboard `evaluate` recorded for the same inputs (found, not scored again)
    (reacted,) = evaluation_worker_outputs(prepared, train_run)
    assert reacted["type"] == "model.evaluated" and reacted["payload"]["report"] == board_id
    assert reacted["payload"]["gate"]["passed"]


def evaluation_worker_outputs(where: Path, run_id: str) -> list[dict[str, Any]]:
    """Run ``gristmill worker --stage evaluation`` until it has evaluated in run ``run_id``;
    the events it announced."""
    worker = subprocess.Popen(
        [sys.executable, "-m", "gristmill", "worker", "--stage", "evaluation"],
        cwd=where,
        env={k: v for k, v in os.environ.items() if not k.startswith("GRISTMILL_")},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    done: list[StageExecution] = []
    try:
        deadline = time.monotonic() + 90
        while not done and time.monotonic() < deadline and worker.poll() is None:
            time.sleep(0.5)
            with metadata(where) as store:
                done = [
                    e
                    for e in store.executions.list_executions(run_id)
                    if e.stage == "evaluation" and e.status == "succeeded"
                ]
        worker.send_signal(signal.SIGTERM)
        out, err = worker.communicate(timeout=30)
    finally:
        worker.kill()
    assert done, f"the worker evaluated nothing in run {run_id}:\n{out}\n{err}"
    return done[0].outputs


def test_every_candidate_failing_exits_non_zero(
    prepared: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = gm_here(
        "train",
        "failing.yaml",
        "--executor",
        "inline",
        cwd=prepared,
        monkeypatch=monkeypatch,
        capsys=capsys,
    )
    assert code == 1
    assert re.search(r"typo\s*│\s*logistic_regression\s*│\s*failed", out)
    assert "'C'" in out and "every candidate failed" in err  # the estimator's own words
    code, _, err = gm_here(
        "evaluate", "failing.yaml", cwd=prepared, monkeypatch=monkeypatch, capsys=capsys
    )
    assert code == 1
    assert "every candidate of failing.yaml failed to train on fs_" in err
    assert "nothing to evaluate" in err


def test_evaluate_before_train_says_to_train(
    prepared: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    (prepared / "other.yaml").write_text(SPEC + "    - {name: forest, algorithm: random_forest}\n")
    code, _, err = gm_here(
        "evaluate", "other.yaml", cwd=prepared, monkeypatch=monkeypatch, capsys=capsys
    )
    assert code == 1
    assert "no candidate of other.yaml has been trained on feature set fs_" in err
    assert "run `gristmill train other.yaml` first" in err


@pytest.mark.parametrize("verb", ["split", "train", "evaluate"])
def test_no_feature_set_prepared_says_what_to_run(
    tmp_path: Path, verb: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "pipeline.yaml").write_text(SPEC + GOOD)
    code, _, err = gm_here(
        verb, "pipeline.yaml", cwd=tmp_path, monkeypatch=monkeypatch, capsys=capsys
    )
    assert code == 1
    assert (
        "no feature set 'cancer_v1' prepared yet; run `gristmill prepare pipeline.yaml` "
        "or `gristmill run pipeline.yaml` first"
    ) in err
    assert "Traceback" not in err


def test_wrong_inputs_name_the_thing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def run(*args: str) -> tuple[int, str, str]:
        return gm_here(*args, cwd=tmp_path, monkeypatch=monkeypatch, capsys=capsys)

    code, _, err = run("train", "nowhere.yaml")
    assert code == 2 and "cannot read pipeline spec 'nowhere.yaml'" in err

    (tmp_path / "untrained.yaml").write_text(SPEC.split("split:", maxsplit=1)[0])
    for verb in ("split", "train", "evaluate"):
        code, _, err = run(verb, "untrained.yaml")
        assert code == 2 and "untrained.yaml has no `train:` section" in err

    (tmp_path / "pipeline.yaml").write_text(SPEC + GOOD)
    for verb in ("split", "train", "evaluate"):
        code, _, err = run(verb, "pipeline.yaml", "--feature-set", "fs_nope")
        assert code == 1
        assert "no feature set with id 'fs_nope'; list them with `gristmill ls feature-sets`" in err

    code, _, err = run("train", "pipeline.yaml", "--executor", "spark")
    assert code == 2 and "'spark' is not one of" in err


@pytest.mark.parametrize("verb", ["split", "train", "evaluate"])
def test_help_describes_and_shows_an_example(verb: str) -> None:
    result = CliRunner().invoke(app, [verb, "--help"])
    assert result.exit_code == 0
    assert f"gristmill {verb} examples/penguins/pipeline.yaml" in result.output
    assert "--feature-set" in result.output and "train.feature_set" in result.output
    listing = CliRunner().invoke(app, ["--help"]).output
    assert verb in listing
