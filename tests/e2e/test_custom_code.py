"""Custom code beside a spec, as a user meets it through the CLI.

A feature step or learner that is not a scikit-learn estimator is refused when the spec is
checked — by ``ingest --queue`` before anything is queued, and by ``run`` — with one line
naming its key path and the fix, never a traceback.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from gristmill.cli import running
from gristmill.testing.cli import run_cli as gm
from gristmill.testing.cli import run_cli_here

DATA = "a,b,y\n1,2,0\n3,4,1\n5,6,0\n7,8,1\n2,3,0\n4,5,1\n6,7,0\n8,9,1\n"
STEPS = """\
class Doubler:
    def __init__(self, factor=2):
        self.factor = factor

    def fit(self, X, y=None):
        return self

    def transform(self, X):
        return X * self.factor
"""
MODELS = """\
class Majority:
    def fit(self, X, y):
        self.label_ = max(set(y), key=list(y).count)
        return self

    def predict(self, X):
        return [self.label_] * len(X)
"""
SPEC = """\
name: custom
sources:
  s: {{format: csv, path: data.csv}}
features:
  fs:
    from: [s]
    label: y
    steps:
      - impute: {{columns: [a]}}
      - {step}: {{columns: [a, b]}}
train:
  task: classification
  candidates:
    - {{name: tree, algorithm: decision_tree}}
    - {{name: mine, algorithm: {algorithm}}}
"""


def project(folder: Path, *, step: str = "standardize", algorithm: str = "kmeans") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "data.csv").write_text(DATA)
    (folder / "gm_custom_steps.py").write_text(STEPS)
    (folder / "gm_custom_models.py").write_text(MODELS)
    (folder / "gristmill.toml").write_text(
        f'home = "{folder / "home"}"\n[executor]\nbackend = "inline"\n'
    )
    (folder / "pipeline.yaml").write_text(SPEC.format(step=step, algorithm=algorithm))
    return folder


def no_traceback(text: str) -> None:
    assert "Traceback" not in text and 'File "' not in text, text


def test_a_step_that_is_no_estimator_is_refused_before_anything_is_queued(
    tmp_path: Path,
) -> None:
    folder = project(tmp_path / "p", step='"gm_custom_steps:Doubler"')
    for command in (
        ("ingest", "s", "--spec", "pipeline.yaml", "--queue"),
        ("run", "pipeline.yaml"),
    ):
        refused = gm(*command, cwd=folder)
        assert refused.returncode == 2, refused.stdout + refused.stderr
        no_traceback(refused.stderr)
        message = " ".join(refused.stderr.split())
        assert message.startswith(
            "error: features.fs.steps[1] (gm_custom_steps:Doubler): feature step "
            "'gm_custom_steps:Doubler' is not a scikit-learn estimator"
        ), message
        assert "derive it from TransformerMixin and BaseEstimator" in message
        assert "queued" not in refused.stdout
    runs = gm("ls", "runs", cwd=folder)
    assert "custom" not in runs.stdout, runs.stdout  # nothing was recorded, nothing queued


def test_a_learner_that_is_no_estimator_is_refused_before_anything_is_queued(
    tmp_path: Path,
) -> None:
    folder = project(tmp_path / "p", algorithm='"gm_custom_models:Majority"')
    refused = gm("ingest", "s", "--spec", "pipeline.yaml", "--queue", cwd=folder)
    assert refused.returncode == 2, refused.stdout + refused.stderr
    no_traceback(refused.stderr)
    message = " ".join(refused.stderr.split())
    assert message.startswith(
        "error: train.candidates.mine: algorithm 'gm_custom_models:Majority' is not a "
        "scikit-learn estimator: class Majority has fit but no get_params"
    ), message


def test_an_unexpected_error_is_one_line_naming_where_it_came_from(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = project(tmp_path / "p")

    def broken(spec: Any) -> None:
        raise ZeroDivisionError("division by zero")

    monkeypatch.setattr(running, "preflight", broken)  # a bug nothing foresaw
    code, _, err = run_cli_here(
        "ingest",
        "s",
        "--spec",
        "pipeline.yaml",
        "--queue",
        cwd=folder,
        monkeypatch=monkeypatch,
        capsys=capsys,
    )
    assert code == 1
    no_traceback(err)
    message = " ".join(err.split())
    assert message.startswith("error: unexpected ZeroDivisionError in ")
    assert "test_custom_code.py" in message and "division by zero" in message
    assert "run again with -vv to see the traceback" in message
