"""Custom code beside a spec, as a user meets it through the CLI.

A feature step or learner that is not a scikit-learn estimator is refused when the spec is
checked — by ``ingest --queue`` before anything is queued, and by ``run`` — with one line
naming its key path and the fix, never a traceback. A bug in a custom module, fixed on disk,
is fixed for a worker that already imported it: the dead letter replayed succeeds, with no
restart of the worker.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest

from gristmill.cli import running
from gristmill.config.settings import load_settings
from gristmill.runtime.wiring import build_metadata
from gristmill.stores.metadata import StageExecution
from gristmill.testing.cli import found, run_cli_here, running_worker
from gristmill.testing.cli import run_cli as gm

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


def project(
    folder: Path, *, step: str = "standardize", algorithm: str = "logistic_regression"
) -> Path:
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

    async def broken(*args: Any) -> None:
        raise ZeroDivisionError("division by zero")

    # a bug nothing foresaw, in what `ingest --queue` calls (patched where the verb looks it
    # up when it runs: the modules a verb imports lazily must not keep the broken one)
    monkeypatch.setattr(running, "_queue", broken)
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


BUGGY = """\
from sklearn.base import BaseEstimator, TransformerMixin


class Shift(TransformerMixin, BaseEstimator):
    def __init__(self, by=1):
        self.by = by

    def fit(self, X, y=None):
        return self

    def transform(self, X):
        raise RuntimeError("bug: Shift is not written yet")
"""
FIXED = BUGGY.replace(
    'raise RuntimeError("bug: Shift is not written yet")', "return X + self.by  # fixed"
)
PREPARE_ONLY = """\
name: reload
sources:
  s: {format: csv, path: data.csv}
features:
  fs:
    from: [s]
    label: y
    steps:
      - "gm_reload_steps:Shift": {columns: [a, b]}
"""


def settled(folder: Path, event_id: str, timeout: float = 90) -> StageExecution:
    """The preparation of event ``event_id`` once it is no longer running."""
    store = build_metadata(load_settings(folder / "gristmill.toml"))
    store.open()
    try:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for run in store.runs.list_runs():
                for execution in store.executions.list_executions(run.run_id):
                    if execution.input_event_id == event_id and execution.status != "running":
                        return execution
            time.sleep(0.3)
    finally:
        store.close()
    raise AssertionError(f"the preparation of {event_id} did not settle within {timeout}s")


def letter_of(folder: Path, timeout: float = 60) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        listed = gm("dead-letters", "ls", cwd=folder, check=True).stdout
        if "preparation" in listed:
            return found(r"(\w{26})\s", listed)
        time.sleep(0.5)
    raise AssertionError("no dead letter of the preparation")


def test_a_fixed_module_is_read_again_by_a_running_worker_on_replay(tmp_path: Path) -> None:
    folder, elsewhere = project(tmp_path / "p"), tmp_path / "elsewhere"
    elsewhere.mkdir()
    settings = (folder / "gristmill.toml").read_text() + "[bus]\nmax_attempts = 1\n"
    for place in (folder, elsewhere):  # the worker knows the project only by its spec
        (place / "gristmill.toml").write_text(settings)
    (folder / "pipeline.yaml").write_text(PREPARE_ONLY)
    steps = folder / "gm_reload_steps.py"
    steps.write_text(BUGGY)
    with running_worker(elsewhere):
        queued = gm("ingest", "s", "--spec", "pipeline.yaml", "--queue", cwd=folder, check=True)
        run_id = found(r"run (\w+) \(spec", queued.stdout)
        letter = letter_of(folder)
        shown = gm("dead-letters", "show", letter, cwd=folder, check=True).stdout
        assert "bug: Shift is not written yet" in shown and run_id in shown

        steps.write_text(FIXED)  # the worker imported the buggy module and keeps running
        replayed = gm("dead-letters", "replay", letter, cwd=folder, check=True).stdout
        assert "workers read such modules again once their files change" in (
            " ".join(replayed.split())
        )
        copy_id = found(r"replayed raw.ingested as event (\w+)", replayed)
        execution = settled(folder, copy_id)
    assert execution.status == "succeeded", execution.error


METRICS = """\
def profit(y_true, y_pred, y_proba):
    raise ValueError("profit: the price list is not loaded")
"""


def test_a_failing_custom_evaluator_fails_the_evaluation_naming_it_and_the_run_is_not_succeeded(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = project(tmp_path / "p", algorithm="logistic_regression")
    (folder / "gm_failing_metrics.py").write_text(METRICS)
    spec = (folder / "pipeline.yaml").read_text()
    evaluate = "evaluate:\n  metric: accuracy\n  evaluators: [f1, gm_failing_metrics:profit]\n"
    (folder / "pipeline.yaml").write_text(spec + evaluate)
    code, out, err = run_cli_here(
        "run", "pipeline.yaml", cwd=folder, monkeypatch=monkeypatch, capsys=capsys
    )
    said = " ".join((out + err).split())
    assert code == 1, said
    assert "failed to train" not in said
    assert (
        "evaluate.evaluators[1] (gm_failing_metrics:profit) raised ValueError: profit: the "
        "price list is not loaded" in said
    )
    code, listed, _ = run_cli_here(
        "ls", "runs", "--json", cwd=folder, monkeypatch=monkeypatch, capsys=capsys
    )
    (run,) = json.loads(listed)
    assert run["status"] in ("failed", "partial")
    shown = " ".join(
        run_cli_here("show", run["run_id"], cwd=folder, monkeypatch=monkeypatch, capsys=capsys)[
            1
        ].split()
    )
    assert "evaluation" in shown and "gm_failing_metrics:profit" in shown


ESTIMATOR = """\
import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin


class First(ClassifierMixin, BaseEstimator):
    def fit(self, X, y):
        self.classes_ = np.unique(y)
        return self

    def predict(self, X):
        return np.full(len(X), self.classes_[0])
"""
ADDED = (
    ESTIMATOR
    + """

class Second(First):
    def predict(self, X):
        return np.full(len(X), self.classes_[-1])
"""
)
TRAIN_ONLY = """\
name: added
sources:
  s: {{format: csv, path: data.csv}}
features:
  fs: {{from: [s], label: y}}
train:
  task: classification
  retries: 0
  candidates:
    - {{name: mine, algorithm: "gm_added_models:{name}"}}
"""


def executed(folder: Path, run_id: str, stage: str, timeout: float = 120) -> StageExecution:
    """The execution of ``stage`` in run ``run_id`` once it is no longer running."""
    store = build_metadata(load_settings(folder / "gristmill.toml"))
    store.open()
    try:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for execution in store.executions.list_executions(run_id):
                if execution.stage == stage and execution.status != "running":
                    return execution
            time.sleep(0.3)
    finally:
        store.close()
    raise AssertionError(f"the {stage} of run {run_id} did not settle within {timeout}s")


def trainable(folder: Path) -> tuple[Path, Path]:
    """A project whose custom estimator trains in the local executor's worker processes
    (the worker itself need not import it), and a folder the worker runs in."""
    elsewhere = folder.parent / "elsewhere"
    project(folder)
    elsewhere.mkdir()
    settings = (
        f'home = "{folder / "home"}"\n[executor]\nbackend = "local"\nworkers = 1\n'
        "[bus]\nmax_attempts = 1\n"
    )
    for place in (folder, elsewhere):
        (place / "gristmill.toml").write_text(settings)
    (folder / "data.csv").write_text(DATA + DATA.partition("\n")[2] * 3)
    return folder, elsewhere


def queue(folder: Path) -> str:
    queued = gm("ingest", "s", "--spec", "pipeline.yaml", "--queue", cwd=folder, check=True)
    return found(r"run (\w+) \(spec", queued.stdout)


def test_a_class_added_to_a_module_is_trained_by_a_running_worker(tmp_path: Path) -> None:
    folder, elsewhere = trainable(tmp_path / "p")
    (folder / "gm_added_models.py").write_text(ESTIMATOR)
    (folder / "pipeline.yaml").write_text(TRAIN_ONLY.format(name="First"))
    with running_worker(elsewhere):
        execution = executed(folder, queue(folder), "training")
        assert execution.status == "succeeded", execution.error

        (folder / "gm_added_models.py").write_text(ADDED)  # a new class, and the spec names it
        (folder / "pipeline.yaml").write_text(TRAIN_ONLY.format(name="Second"))
        execution = executed(folder, queue(folder), "training")
    assert execution.status == "succeeded", execution.error


def test_a_class_the_module_lacks_fails_naming_the_spec_and_the_module(tmp_path: Path) -> None:
    folder, elsewhere = trainable(tmp_path / "p")
    (folder / "gm_added_models.py").write_text(ADDED)
    (folder / "pipeline.yaml").write_text(TRAIN_ONLY.format(name="Second"))
    run_id = queue(folder)  # checked then: Second existed
    (folder / "gm_added_models.py").write_text(ESTIMATOR)  # ... and is gone before the work
    with running_worker(elsewhere):
        execution = executed(folder, run_id, "preparation")
    assert execution.status == "failed"
    failed = execution.outputs[0]["payload"]
    assert failed["error_type"] == "ConfigError", failed
    message = failed["error"]
    spec = folder.resolve() / "pipeline.yaml"
    assert message.startswith(f"pipeline spec {spec} ('added', sha256:"), message
    assert f" of run {run_id}): " in message, message
    assert (
        "train.candidates.mine: cannot import algorithm 'gm_added_models:Second': "
        "module 'gm_added_models' has no class 'Second'"
    ) in message, message


def test_a_second_project_s_module_is_found_by_executor_workers_already_running(
    tmp_path: Path,
) -> None:
    first, elsewhere = trainable(tmp_path / "p")
    (first / "gm_added_models.py").write_text(ESTIMATOR)
    (first / "pipeline.yaml").write_text(TRAIN_ONLY.format(name="First"))
    second = project(tmp_path / "q")  # another spec folder, met once the executor runs
    (second / "gristmill.toml").write_text((first / "gristmill.toml").read_text())
    (second / "data.csv").write_text((first / "data.csv").read_text())
    (second / "gm_second_models.py").write_text(ESTIMATOR.replace("First", "Other"))
    (second / "pipeline.yaml").write_text(
        TRAIN_ONLY.format(name="Other").replace("gm_added_models", "gm_second_models")
    )
    with running_worker(elsewhere):
        execution = executed(first, queue(first), "training")
        assert execution.status == "succeeded", execution.error
        execution = executed(second, queue(second), "training")
    assert execution.status == "succeeded", execution.error
