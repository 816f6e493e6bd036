"""Training results as a user reads them: ``show RUN`` and ``show lb_…`` print the leaderboard,
pictures are named as drawn for the task, and ids of candidates and feature sets may be cut.

The runs are real processes (``gristmill run`` for a classification and a regression spec,
then ``gristmill evaluate`` of the regression one); the looks call the CLI's entry point in
this process (``gristmill.cli.app.main``), to spare a start-up per case.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
from sklearn.datasets import load_breast_cancer, load_diabetes

from gristmill.backends.sql.metadata import SqlMetadataStore
from gristmill.testing.cli import cli_stdout as gm
from gristmill.testing.cli import found
from gristmill.testing.cli import run_cli_here as gm_here

CANCER = """\
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
    - {name: logreg, algorithm: logistic_regression, params: {C: 0.5}}
    - {name: tree, algorithm: decision_tree, params: {max_depth: 3}}
evaluate: {metric: roc_auc, evaluators: [accuracy, f1]}
"""
DIABETES = """\
name: diabetes
sources:
  diabetes: {format: parquet, path: diabetes.parquet}
features:
  diabetes_v1:
    from: [diabetes]
    label: target
    steps:
      - standardize: {columns: [bmi, bp]}
split: {strategy: shuffled, test_size: 0.3, seed: 7}
train:
  task: regression
  retries: 0
  candidates:
    - {name: linear, algorithm: linear_regression}
    - {name: stump, algorithm: decision_tree, params: {max_depth: 2}}
    - {name: typo, algorithm: decision_tree, params: {max_depth: -1}}  # fails to fit
"""
CLASSIFICATION_PICTURES = ("roc", "pr", "calibration", "confusion_matrix")
Cli = Callable[..., tuple[int, str, str]]


@dataclass(frozen=True)
class Trained:
    """A folder whose store holds a classification run, a regression run and an evaluate run."""

    where: Path
    cancer_run: str
    cancer_summary: str
    diabetes_run: str
    diabetes_summary: str
    evaluate_run: str


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> Trained:
    where = tmp_path_factory.mktemp("results")
    cancer = load_breast_cancer(as_frame=True).frame
    cancer.columns = [c.replace(" ", "_") for c in cancer.columns]
    cancer.to_parquet(where / "cancer.parquet", index=False)
    load_diabetes(as_frame=True).frame.to_parquet(where / "diabetes.parquet", index=False)
    (where / "cancer.yaml").write_text(CANCER)
    (where / "diabetes.yaml").write_text(DIABETES)
    cancer_summary = gm("run", "cancer.yaml", cwd=where)
    diabetes_summary = gm("run", "diabetes.yaml", cwd=where)
    evaluated = gm("evaluate", "diabetes.yaml", cwd=where)
    with SqlMetadataStore(f"sqlite:///{where / '.gristmill' / 'metadata.db'}") as store:
        # `evaluate` found the leaderboard `run` recorded for the same inputs; its own run
        # names it among its outputs
        board_id = found(r"gristmill show (lb_\w+)", evaluated)
        evaluate_run = next(
            r.run_id for r in store.runs.list_runs() if r.summary.get("command") == "evaluate"
        )
        assert store.reports.get_report(board_id).run_id != evaluate_run
    return Trained(
        where,
        found(r"run (\w{26}) of cancer", cancer_summary),
        cancer_summary,
        found(r"run (\w{26}) of diabetes", diabetes_summary),
        diabetes_summary,
        evaluate_run,
    )


@pytest.fixture
def cli(
    trained: Trained, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> Cli:
    """``gristmill ARGS`` in the folder of the runs, in this process."""

    def run(*args: str) -> tuple[int, str, str]:
        return gm_here(*args, cwd=trained.where, monkeypatch=monkeypatch, capsys=capsys)

    return run


def look(cli: Cli, *args: str) -> str:
    """The stdout of ``gristmill ARGS``, which must succeed."""
    code, out, err = cli(*args)
    assert code == 0, err
    return out


def metadata(trained: Trained) -> SqlMetadataStore:
    return SqlMetadataStore(f"sqlite:///{trained.where / '.gristmill' / 'metadata.db'}")


def test_show_run_prints_the_leaderboard_of_its_evaluation(trained: Trained, cli: Cli) -> None:
    out = look(cli, "show", trained.cancer_run[:12])
    assert "executions" in out and "evaluation" in out
    assert "leaderboard (roc_auc, test subset)" in out
    best = found(r"1\s*│\s*(\w+) ★\s*│", out)
    assert re.search(r"2\s*│\s*(logreg|tree)\s*│\s*0\.\d{4}\s*│", out)
    assert re.search(r"│\s*accuracy=0\.\d+, f1=0\.\d+", out)  # the other metrics
    assert "gate: passed — no model 'cancer' in production yet" in out
    names = ", ".join(f"{name}.png" for name in ("roc", "pr", "calibration", "confusion_matrix"))
    folder = found(rf"pictures of {best}: {names} in (\S+)", out)
    assert (trained.where / folder / "roc.png").is_file()
    assert found(r"gristmill show (lb_\w+)", out).startswith("lb_")


def test_show_run_of_evaluate_prints_its_leaderboard(trained: Trained, cli: Cli) -> None:
    out = look(cli, "show", trained.evaluate_run)
    assert "recorded by `gristmill evaluate`, which announced model.evaluated (diabetes_v1)" in out
    assert "executions" not in out  # the command ran the stage itself: no empty table
    assert "leaderboard (rmse, test subset)" in out
    assert re.search(r"1\s*│\s*(linear|stump) ★\s*│\s*\d+\.\d{4}", out)
    assert "✗ typo is not ranked: it failed to train (" in out and "max_depth" in out
    assert "gate: passed" in out
    assert re.search(r"pictures of (linear|stump): residuals\.png in \S+", out)
    assert "ROC" not in out and "roc.png" not in out


def test_show_run_json_keeps_everything_and_adds_the_leaderboard(
    trained: Trained, cli: Cli
) -> None:
    shown = json.loads(look(cli, "show", trained.cancer_run, "--json"))
    assert {"summary", "executions", "audit"} <= set(shown)
    assert shown["spec"]["name"] == "cancer" and shown["spec_digest"].startswith("sha256:")
    (board,) = shown["leaderboards"]
    assert board["kind"] == "leaderboard" and board["run_id"] == trained.cancer_run
    assert set(board["body"]["curves"]["logreg"]) == {"roc", "pr", "calibration"}
    assert json.loads(look(cli, "show", trained.evaluate_run, "--json"))["leaderboards"]


def test_show_leaderboard_prints_a_leaderboard_not_its_points(trained: Trained, cli: Cli) -> None:
    board_id = found(r"gristmill show (lb_\w+)", look(cli, "show", trained.cancer_run))
    out = look(cli, "show", board_id[:8])
    lines = out.splitlines()
    assert lines[0] == f"leaderboard {board_id}"
    assert re.fullmatch(r"  split: sp_\w+", lines[1])
    assert lines[2:4] == ["  metric: roc_auc", "  task: classification"]
    assert re.fullmatch(r"  created: \d{4}-\d\d-\d\d \d\d:\d\d", lines[4])
    assert lines[5] == f"  run: {trained.cancer_run}"
    assert re.search(r"1\s*│\s*(logreg|tree) ★\s*│\s*0\.\d{4}\s*│\s*accuracy=", out)
    assert "gate: passed" in out
    for candidate in ("logreg", "tree"):
        for picture in CLASSIFICATION_PICTURES:
            path = found(rf"{candidate}\s*│\s*{picture}\s*│\s*(\S+\.png)", out)
            assert (trained.where / path).is_file()
    assert "curves: roc, pr, calibration for each candidate — see --json" in out
    assert len(lines) < 40 and "fpr" not in out and '"classes"' not in out

    full = json.loads(look(cli, "show", board_id, "--json"))
    assert full["report_id"] == board_id
    assert {"metric", "task", "standings", "failed", "gate", "curves", "images"} <= set(
        full["body"]
    )
    assert full["body"]["curves"]["tree"]["roc"]  # every point is still there


def test_show_regression_leaderboard_names_its_pictures_and_failures(
    trained: Trained, cli: Cli
) -> None:
    board_id = found(r"gristmill show (lb_\w+)", look(cli, "show", trained.evaluate_run))
    out = look(cli, "show", board_id)
    assert "  task: regression" in out
    assert "✗ typo is not ranked: it failed to train" in out
    for candidate in ("linear", "stump"):
        path = found(rf"{candidate}\s*│\s*residuals\s*│\s*(\S+\.png)", out)
        assert (trained.where / path).is_file()
    assert "curves: residuals for each candidate — see --json" in out
    assert "roc.png" not in out and "curves: roc" not in out and "ROC" not in out


def test_run_summary_names_the_pictures_drawn(trained: Trained) -> None:
    assert re.search(r"pictures of (linear|stump): residuals\.png in \S+", trained.diabetes_summary)
    assert "ROC" not in trained.diabetes_summary
    assert re.search(
        r"pictures of (logreg|tree): roc\.png, pr\.png, calibration\.png, "
        r"confusion_matrix\.png in \S+",
        trained.cancer_summary,
    )


def test_promote_takes_the_start_of_a_candidate_id(trained: Trained, cli: Cli) -> None:
    with metadata(trained) as store:
        listed = store.candidates.list_candidates(limit=1000)
    candidates = [c.candidate_id for c in listed]
    full = next(c.candidate_id for c in listed if c.status == "trained")
    start = next(
        full[:n]
        for n in range(4, len(full))
        if sum(c.startswith(full[:n]) for c in candidates) == 1
    )
    out = look(cli, "promote", start, "--model", "prefixed")
    assert f"({full}) as prefixed version 1" in out
    assert "prefixed@champion → version 1" in out

    code, _, err = cli("promote", "mc_", "--model", "prefixed")
    assert code == 1 and "'mc_' is only the prefix of model candidate ids" in err
    code, _, err = cli("promote", "mc_ffffffff", "--model", "prefixed")
    assert code == 1
    assert "no candidate with id 'mc_ffffffff'; list them with `gristmill ls candidates`" in err


@pytest.mark.parametrize("verb", ["split", "train", "evaluate"])
def test_feature_set_option_takes_the_start_of_an_id(trained: Trained, cli: Cli, verb: str) -> None:
    with metadata(trained) as store:
        full = store.feature_sets.latest_feature_set("cancer_v1")
    assert full is not None
    start = full.feature_set_id[:10]
    out = look(cli, verb, "cancer.yaml", "--feature-set", start)
    if verb == "split":
        assert f"of cancer_v1 ({full.feature_set_id})" in out
    elif verb == "train":
        assert f"trained (classification) on {full.feature_set_id}" in out
    else:
        assert "leaderboard (roc_auc, test subset)" in out

    code, _, err = cli(verb, "cancer.yaml", "--feature-set", "fs")
    assert code == 1 and "'fs' is only the prefix of feature set ids (fs_…)" in err
    assert "`gristmill ls feature-sets`" in err
