"""The task as a user meets it: stated with its reason, and named (`train.task`) in errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from gristmill.testing.cli import run_cli_here as gm_here
from gristmill.testing.data import housing_table, write_csv

SPEC = """\
name: housing
sources:
  housing: {{format: csv, path: housing.csv}}
features:
  housing_v1: {{from: [housing], label: price}}
split: {{strategy: random, test_size: 0.25, seed: 1}}
train:
  retries: 0
  candidates:
    - {{name: lin, algorithm: {algorithm}}}
    - {{name: tree, algorithm: decision_tree, params: {{max_depth: 4}}}}
evaluate: {{metric: {metric}}}
"""
INFERRED = (
    "task: regression (inferred: integer label 'price' with {values} distinct values, more "
    "than 20; set train.task to override)"
)


@pytest.fixture
def housing(tmp_path: Path) -> Path:
    write_csv(tmp_path / "housing.csv", housing_table(3000))
    (tmp_path / "gristmill.toml").write_text('[executor]\nbackend = "inline"\n')
    return tmp_path


def test_the_run_summary_and_train_state_the_inferred_task(
    housing: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # Before: the integer price was taken as 1,000+ classes and `rmse` was refused.
    (housing / "pipeline.yaml").write_text(
        SPEC.format(algorithm="linear_regression", metric="rmse")
    )
    code, out, err = gm_here(
        "run", "pipeline.yaml", cwd=housing, monkeypatch=monkeypatch, capsys=capsys
    )
    assert code == 0, out + err
    assert INFERRED.format(values="1,846") in out
    code, out, err = gm_here(
        "train", "pipeline.yaml", cwd=housing, monkeypatch=monkeypatch, capsys=capsys
    )
    assert code == 0, out + err
    assert INFERRED.format(values="1,846") in out


@pytest.mark.parametrize(
    ("algorithm", "metric", "says"),
    [
        (
            "linear_regression",
            "accuracy",
            "metric 'accuracy' is for classification; this is a regression task",
        ),
        (
            "logistic_regression",
            "rmse",
            "'logistic_regression' is for classification, not regression",
        ),
    ],
)
def test_a_task_mismatch_names_train_task(
    housing: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    algorithm: str,
    metric: str,
    says: str,
) -> None:
    (housing / "pipeline.yaml").write_text(SPEC.format(algorithm=algorithm, metric=metric))
    _, out, err = gm_here(
        "run", "pipeline.yaml", cwd=housing, monkeypatch=monkeypatch, capsys=capsys
    )
    text = " ".join((out + err).split())  # the console wraps long lines
    assert says in text
    assert "inferred: integer label 'price' with 1,846 distinct values" in text
    assert "set train.task" in text


def test_thousands_of_classes_are_refused_naming_train_task(
    housing: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    spec = SPEC.format(algorithm="logistic_regression", metric="accuracy")
    (housing / "pipeline.yaml").write_text(spec.replace("  retries: 0", "  task: classification"))
    code, out, err = gm_here(
        "run", "pipeline.yaml", cwd=housing, monkeypatch=monkeypatch, capsys=capsys
    )
    text = " ".join((out + err).split())
    assert code != 0, text
    assert "label 'price' has 1,846 distinct values, more classes than a classifier takes" in text
    assert "set train.task: regression" in text
