"""Benchmark: online scoring — ``gristmill serve`` against a bare ONNX endpoint, MLflow, MLServer.

Usage: ``.venv/bin/python bench/bench_serving.py [--rows 200000] [--duration 10]
[--models logreg,forest] [--connections 1,8,64] [--no-peers]``

Workload (issue 9): ``make_classification(n_samples=200_000, n_features=20,
n_informative=10, random_state=0)``; a logistic regression and a random forest (100 trees,
``max_depth`` 8), each trained *through gristmill* — a spec whose feature set standardizes
the 20 columns, ``gristmill run``, then ``gristmill promote`` of each candidate as its own
model (``serving_logreg``, ``serving_forest``) at ``@champion``, which compiles its servable.

Servers, one at a time, each on the same model and on 127.0.0.1:

(a) ``gristmill serve`` with one worker and its default settings: routing, metrics, the
    prediction log (every request) and micro-batching on, the prediction cache off (the
    load repeats one body). Native API: ``POST /v1/models/<model>/predict``, ``rows``.
    Then again with ``--workers 4`` (recorded).
(b) the bare endpoint (bench/serving/bare_server.py): FastAPI on uvicorn calling the same
    ONNX graph with nothing else — the limit of the Python HTTP stack.
(c) ``mlflow models serve --env-manager local`` of the same fitted scikit-learn pipeline
    (gristmill's fitted StandardScaler and learner, saved by ``mlflow.sklearn.save_model`` in
    MLflow's own venv), ``dataframe_split`` bodies, answering ``predict_proba``.
(d) MLServer with its scikit-learn runtime, the same pipeline as a joblib file, Open
    Inference Protocol v2 JSON: one FP64 tensor ``[rows, 20]``, outputs ``predict`` and
    ``predict_proba``.

Load: wrk (Debian's package), one thread, a fixed body per run (bench/serving/post.lua):
single-row requests at 1, 8 and 64 connections and 1,000-row requests at 8, ``--duration``
seconds each after a 2 s warm-up. Every server's answer to the single row is checked against
the scikit-learn pipeline's before it is loaded. The peers live in their own venvs, found by
``GRISTMILL_BENCH_MLFLOW_VENV`` and ``GRISTMILL_BENCH_MLSERVER_VENV`` (default
bench/.venv-mlflow and bench/.venv-mlserver); a missing one is skipped with a line saying how
to make it. Results are printed and written to bench/results/serving.md.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import joblib
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
from sklearn.datasets import make_classification
from sklearn.pipeline import Pipeline

from gristmill.config.settings import load_settings
from gristmill.runtime.wiring import open_stores
from gristmill.servables import load_servable
from gristmill.servables import storage as servable_storage
from gristmill.servables.loading import resolve_version
from gristmill.training.bundle import load_scorer

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
SERVING = HERE / "serving"
RESULTS = HERE / "results" / "serving.md"
FEATURES = [f"f{i}" for i in range(20)]
MODELS = {"logreg": "serving_logreg", "forest": "serving_forest"}
LABELS = {"logreg": "logistic regression", "forest": "random forest (100 trees, depth 8)"}
WRK = shutil.which("wrk") or "/usr/bin/wrk"
PEERS = {
    "mlflow": ("GRISTMILL_BENCH_MLFLOW_VENV", HERE / ".venv-mlflow", "requirements-mlflow.txt"),
    "mlserver": (
        "GRISTMILL_BENCH_MLSERVER_VENV",
        HERE / ".venv-mlserver",
        "requirements-mlserver.txt",
    ),
}

SPEC = """\
name: bench_serving
sources:
  rows: {{format: parquet, path: rows.parquet}}
features:
  serving_v1:
    from: [rows]
    label: label
    steps:
      - standardize: {{columns: [{features}]}}
split: {{strategy: stratified, test_size: 0.25, seed: 0}}
train:
  candidates:
    - {{name: logreg, algorithm: logistic_regression}}
    - {{name: forest, algorithm: random_forest,
       params: {{n_estimators: 100, max_depth: 8, random_state: 0}}}}
evaluate: {{metric: roc_auc}}
"""


# --- training through gristmill ---------------------------------------------------------


def gristmill_env() -> dict[str, str]:
    """This process's environment without GRISTMILL_* (the folder's own settings rule)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("GRISTMILL_")}
    env["PYTHONPATH"] = os.pathsep.join(
        p for p in (str(ROOT / "src"), os.environ.get("PYTHONPATH", "")) if p
    )
    return env


def gristmill(folder: Path, *args: str) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "gristmill", *args],
        cwd=folder,
        env=gristmill_env(),
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        print(done.stdout[-3000:], done.stderr[-3000:], file=sys.stderr)
        raise SystemExit(f"`gristmill {' '.join(args)}` failed (exit {done.returncode})")
    return done.stdout


def train(folder: Path, rows: int) -> tuple[pd.DataFrame, dict[str, float]]:
    """Data, spec, ``gristmill run``, ``gristmill promote`` of both candidates; the held-out
    rows and the seconds each step took."""
    X, y = make_classification(
        n_samples=rows, n_features=20, n_informative=10, random_state=0
    )  # fmt: skip
    frame = pd.DataFrame(X, columns=FEATURES)
    table = pa.Table.from_pandas(frame.assign(label=y), preserve_index=False)
    pq.write_table(table, folder / "rows.parquet")
    (folder / "serving.yaml").write_text(SPEC.format(features=", ".join(FEATURES)))
    timings: dict[str, float] = {}
    start = time.perf_counter()
    summary = gristmill(folder, "run", "serving.yaml")
    timings["run_s"] = time.perf_counter() - start
    candidates: dict[str, str] = {}
    for line in summary.splitlines():
        for key in MODELS:
            if f" {key} " in line and "mc_" in line:
                candidates[key] = line[line.index("mc_") :].split()[0]
    if set(candidates) != set(MODELS):
        print(summary, file=sys.stderr)
        raise SystemExit("could not find both candidates' ids in the run summary")
    for key, model in MODELS.items():
        start = time.perf_counter()
        gristmill(folder, "promote", candidates[key], "--model", model)
        timings[f"promote_{key}_s"] = time.perf_counter() - start
    return frame.iloc[-5000:].reset_index(drop=True), timings


@dataclass
class Exported:
    """A served model's figures and the files the other servers load."""

    key: str
    model: str
    kind: str
    reason: str
    parity: dict[str, Any] | None
    onnx: Path
    joblib: Path
    sklearn_vs_onnx: float
    expected: dict[str, Any] = field(default_factory=dict)


def export(folder: Path, rows: pd.DataFrame) -> dict[str, Exported]:
    """For each model: its servable's manifest and ONNX graph, and the same fitted objects
    as one scikit-learn ``Pipeline`` (for MLflow and MLServer), checked against the graph."""
    settings = load_settings(overrides={"home": str(folder / ".gristmill")})
    out: dict[str, Exported] = {}
    with open_stores(settings) as stores:
        for key, model in MODELS.items():
            servable = load_servable(stores, model)
            manifest = servable.manifest
            if manifest.kind != "onnx":
                raise SystemExit(f"{model} was served natively ({manifest.reason}); expected ONNX")
            body = json.loads(servable_storage.read(stores, manifest.digest, model))
            graph = servable_storage.read(stores, body["graph"], f"the graph of {model}")
            version = resolve_version(stores, model, "champion")
            candidate = stores.metadata.candidates.get_candidate(version.candidate_id)
            scorer = load_scorer(stores, candidate)
            assert scorer.pipeline is not None
            (step,) = scorer.pipeline.steps
            scaler = step.estimator_  # type: ignore[attr-defined]
            estimator = scorer.learner.estimator  # type: ignore[attr-defined]
            assert list(scaler.feature_names_in_) == FEATURES, scaler.feature_names_in_
            assert scorer.learner.feature_names == FEATURES, scorer.learner.feature_names
            if hasattr(estimator, "n_jobs"):
                # gristmill trains forests with n_jobs=-1; served one row at a time, that
                # starts a thread pool per request: the peers get what one would serve
                estimator.set_params(n_jobs=1)
            pipeline = Pipeline([("standardize", scaler), ("model", estimator)])
            here = folder / "export" / key
            here.mkdir(parents=True, exist_ok=True)
            (here / "model.onnx").write_bytes(graph)
            joblib.dump(pipeline, here / "model.joblib")
            sample = rows.iloc[:2000]
            reference = scorer.predict_proba(sample).to_numpy(dtype=float)
            ours = pipeline.predict_proba(sample)
            assert np.array_equal(ours, reference), "the exported pipeline differs from gristmill's"
            onnx = servable.predict({c: sample[c].to_numpy() for c in FEATURES})
            assert onnx.probabilities is not None
            first = rows.iloc[:1]
            out[key] = Exported(
                key=key,
                model=model,
                kind=manifest.kind,
                reason=manifest.reason,
                parity=None if manifest.parity is None else vars(manifest.parity),
                onnx=here / "model.onnx",
                joblib=here / "model.joblib",
                sklearn_vs_onnx=float(np.abs(onnx.probabilities - ours).max()),
                expected={
                    "class": int(pipeline.predict(first)[0]),
                    "proba": pipeline.predict_proba(first)[0].tolist(),
                },
            )
    return out
