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
from contextlib import ExitStack, contextmanager
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
RAW = HERE / ".data" / "serving.json"  # every figure of the last run
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
    values, y = make_classification(
        n_samples=rows, n_features=20, n_informative=10, random_state=0
    )  # fmt: skip
    frame = pd.DataFrame(values, columns=FEATURES)
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


# --- request bodies ---------------------------------------------------------------------


def bodies(folder: Path, rows: pd.DataFrame) -> dict[str, Path]:
    """The request bodies, one file each: ``<protocol>_<rows>``."""
    out: dict[str, Path] = {}
    for size in (1, 1000):
        part = rows.iloc[:size]
        records = [{c: float(v) for c, v in zip(FEATURES, r, strict=True)} for r in part.values]
        matrix = part.to_numpy(dtype=float)
        forms: dict[str, Any] = {
            "rows": {"rows": records},
            "columns": {"columns": {c: part[c].astype(float).tolist() for c in FEATURES}},
            "mlflow": {"dataframe_split": {"columns": FEATURES, "data": matrix.tolist()}},
            "oip": {
                "inputs": [
                    {
                        "name": "input-0",
                        "shape": [size, len(FEATURES)],
                        "datatype": "FP64",
                        "data": matrix.reshape(-1).tolist(),
                    }
                ],
                "outputs": [{"name": "predict"}, {"name": "predict_proba"}],
            },
        }
        for form, body in forms.items():
            path = folder / "bodies" / f"{form}_{size}.json"
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(json.dumps(body))
            out[f"{form}_{size}"] = path
    return out


# --- servers ----------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@dataclass
class Server:
    """A server under test: how to start it, where it is ready, where it answers."""

    system: str
    command: list[str]
    ready: str
    predict: str
    cwd: Path
    port: int
    env: dict[str, str] = field(default_factory=dict)


@contextmanager
def running(server: Server, log: Path, timeout: float = 180) -> Iterator[None]:
    """Start ``server`` in a session of its own, wait for its ready URL, stop it after
    (SIGTERM to its process group, i.e. uvicorn's workers or MLflow's child too)."""
    env = {**gristmill_env(), **server.env}
    with log.open("w") as output:
        proc = subprocess.Popen(
            server.command,
            cwd=server.cwd,
            env=env,
            stdout=output,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        deadline = time.monotonic() + timeout
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"{server.system} exited {proc.returncode}: see {log}")
            try:
                with urllib.request.urlopen(server.ready, timeout=2) as answer:
                    if answer.status == 200:
                        break
            except (urllib.error.URLError, OSError):
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"{server.system} was not ready within {timeout}s: see {log}")
            time.sleep(0.2)
        yield
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()


def post(url: str, body: Path) -> Any:
    request = urllib.request.Request(
        url, data=body.read_bytes(), headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=30) as answer:
        return json.loads(answer.read())


def answered(system: str, body: Any) -> tuple[int, list[float]]:
    """The class and probabilities of the first row in ``system``'s answer."""
    if system == "mlflow":
        proba = body["predictions"][0]
        return int(np.argmax(proba)), [float(p) for p in proba]
    if system == "mlserver":
        outputs = {o["name"]: o["data"] for o in body["outputs"]}
        return int(outputs["predict"][0]), [float(p) for p in outputs["predict_proba"][:2]]
    return int(body["predictions"][0]), [float(p) for p in body["probabilities"][0]]


def check_answer(target: Target, bodies_: dict[str, Path], exported: Exported) -> float:
    """The server answers the single row as the scikit-learn pipeline does; the largest
    difference of probabilities."""
    answer = post(target.server.predict, bodies_[f"{target.body}_1"])
    label, proba = answered(target.server.system, answer)
    expected = exported.expected
    diff = float(np.abs(np.asarray(proba) - np.asarray(expected["proba"])).max())
    if label != expected["class"] or diff > 1e-4:
        raise RuntimeError(
            f"{target.system} answered class {label} {proba}, expected {expected['class']} "
            f"{expected['proba']}"
        )
    return diff


def wrk(url: str, body: Path, connections: int, seconds: float) -> dict[str, Any]:
    """One wrk run (one thread); its figures, requests/s and latencies in ms."""
    env = {**os.environ, "BENCH_BODY": str(body), "BENCH_CONTENT_TYPE": "application/json"}
    command = [
        WRK, "-t1", f"-c{connections}", f"-d{round(seconds)}s", "--timeout", "10s",
        "-s", str(SERVING / "post.lua"), url,
    ]  # fmt: skip
    done = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
    lines = [line for line in done.stdout.splitlines() if line.startswith("BENCH ")]
    if done.returncode != 0 or not lines:
        raise RuntimeError(f"wrk failed ({done.returncode}): {done.stdout}\n{done.stderr}")
    figures: dict[str, Any] = json.loads(lines[-1][len("BENCH ") :])
    seconds_taken = figures["duration_us"] / 1e6
    errors = sum(figures[k] for k in ("connect", "read", "write", "status", "timeout"))
    return {
        "connections": connections,
        "rps": figures["requests"] / seconds_taken,
        "requests": figures["requests"],
        "errors": errors,
        "p50_ms": figures["p50_us"] / 1000,
        "p90_ms": figures["p90_us"] / 1000,
        "p99_ms": figures["p99_us"] / 1000,
        "max_ms": figures["max_us"] / 1000,
        "load": os.getloadavg()[0],
    }


# --- the systems ------------------------------------------------------------------------


def peer_venv(peer: str) -> Path | None:
    """The venv of ``peer`` (env var or default), or ``None`` with a line saying how to make it."""
    variable, default, requirements = PEERS[peer]
    venv = Path(os.environ.get(variable) or default)
    if (venv / "bin" / "python").exists():
        return venv
    shown = default.relative_to(ROOT)
    print(
        f"skipping {peer}: no venv at {venv} (set {variable}, or: python3 -m venv {shown} && "
        f"{shown}/bin/pip install -r bench/serving/{requirements})",
        file=sys.stderr,
    )
    return None


def peer_version(venv: Path, package: str) -> str:
    code = f"import importlib.metadata as m; print(m.version({package!r}))"
    done = subprocess.run(
        [str(venv / "bin" / "python"), "-c", code], capture_output=True, text=True, check=False
    )
    return done.stdout.strip() or "unknown"


def gristmill_server(folder: Path, exported: Exported, workers: int) -> Server:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    command = [sys.executable, "-m", "gristmill", "serve", "--port", str(port)]
    command += ["--workers", str(workers), "--model", exported.model]
    system = "gristmill" if workers == 1 else f"gristmill_{workers}w"
    return Server(
        system=system,
        command=command,
        ready=f"{base}/readyz",
        predict=f"{base}/v1/models/{exported.model}/predict",
        cwd=folder,
        port=port,
    )


def bare_server(folder: Path, exported: Exported) -> Server:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    command = [sys.executable, str(SERVING / "bare_server.py"), str(exported.onnx)]
    return Server(
        "bare", [*command, "--port", str(port)], f"{base}/ready", f"{base}/predict", folder, port,
    )  # fmt: skip


def decode_server(folder: Path) -> Server:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    command = [sys.executable, str(SERVING / "decode_server.py"), "--port", str(port)]
    return Server("decode", command, f"{base}/ready", f"{base}/predict", folder, port)


def mlflow_server(venv: Path, exported: Exported) -> Server:
    target = exported.joblib.parent / "mlflow"
    if not target.exists():
        done = subprocess.run(
            [str(venv / "bin" / "python"), str(SERVING / "mlflow_model.py"), str(exported.joblib),
             str(target)],
            capture_output=True, text=True, check=False,
        )  # fmt: skip
        if done.returncode != 0:
            raise RuntimeError(f"saving the MLflow model failed: {done.stderr[-3000:]}")
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    command = [str(venv / "bin" / "mlflow"), "models", "serve", "-m", str(target)]
    command += ["--env-manager", "local", "-h", "127.0.0.1", "-p", str(port), "-w", "1"]
    return Server(
        "mlflow", command, f"{base}/ping", f"{base}/invocations", target.parent, port,
        # MLflow starts uvicorn's command line, which reads UVICORN_* variables: no access
        # log line per request, as for every other server here
        env={"PATH": f"{venv / 'bin'}{os.pathsep}{os.environ.get('PATH', '')}",
             "UVICORN_ACCESS_LOG": "false"},
    )  # fmt: skip


def mlserver_server(venv: Path, exported: Exported) -> Server:
    root = exported.joblib.parent / "mlserver"
    model = root / exported.model
    model.mkdir(parents=True, exist_ok=True)
    shutil.copy(exported.joblib, model / "model.joblib")
    (model / "model-settings.json").write_text(
        json.dumps(
            {
                "name": exported.model,
                "implementation": "mlserver_sklearn.SKLearnModel",
                "parameters": {"uri": "./model.joblib", "version": "v1"},
            }
        )
    )
    port = free_port()
    settings = {
        "host": "127.0.0.1",
        "http_port": port,
        "grpc_port": free_port(),
        "metrics_port": free_port(),
        "debug": False,  # no access log line per request (its default writes one)
        # inference in the HTTP process: MLServer 1.7.1's inference workers die at start
        # with uvloop 0.23 (asyncio.get_event_loop() raises "no current event loop")
        "parallel_workers": 0,
    }
    (root / "settings.json").write_text(json.dumps(settings))
    base = f"http://127.0.0.1:{port}"
    return Server(
        "mlserver", [str(venv / "bin" / "mlserver"), "start", str(root)],
        f"{base}/v2/models/{exported.model}/ready",
        f"{base}/v2/models/{exported.model}/infer", root, port,
        env={"PATH": f"{venv / 'bin'}{os.pathsep}{os.environ.get('PATH', '')}"},
    )  # fmt: skip


@dataclass(frozen=True)
class Target:
    """What one line of the tables loads: a system's name, its server, its body form."""

    system: str
    server: Server
    body: str
    configs: tuple[str, ...]  # "<rows>x<connections>"
    checked: bool = True  # its answer is checked against the pipeline's (not the floor's)


def measure(
    targets: list[Target], exported: Exported, bodies_: dict[str, Path], logs: Path,
    seconds: int, rounds: int,
) -> dict[str, Any]:  # fmt: skip
    """Start every server of ``targets`` (together: an idle one costs nothing), check each
    answer, warm each, then take turns: for each load, each target in turn (the order
    rotating by round), so a change in the machine's background load hits all alike. Per
    target and load, the run of median requests/s over the rounds."""
    servers = list({id(t.server): t.server for t in targets}.values())
    taken: dict[str, dict[str, list[dict[str, Any]]]] = {t.system: {} for t in targets}
    diffs: dict[str, float] = {}
    with ExitStack() as stack:
        for server in servers:
            print(f"  starting {server.system} ...", file=sys.stderr, flush=True)
            stack.enter_context(running(server, logs / f"{exported.key}_{server.system}.log"))
        for target in targets:
            diffs[target.system] = (
                check_answer(target, bodies_, exported) if target.checked else 0.0
            )
            wrk(target.server.predict, bodies_[f"{target.body}_1"], 8, 2)  # warm-up
        configs = list(dict.fromkeys(c for t in targets for c in t.configs))
        for turn in range(rounds):
            for config in configs:
                size, connections = (int(x) for x in config.split("x"))
                here = [t for t in targets if config in t.configs]
                shift = turn % len(here)
                for target in here[shift:] + here[:shift]:
                    body = bodies_[f"{target.body}_{size}"]
                    run = wrk(target.server.predict, body, connections, seconds)
                    taken[target.system].setdefault(config, []).append(run)
                    print(
                        f"    {target.system}: {size} row(s), {connections} conn: "
                        f"{run['rps']:,.0f} rps, p99 {run['p99_ms']:.2f} ms",
                        file=sys.stderr, flush=True,
                    )  # fmt: skip
    results: dict[str, Any] = {}
    for system, configs_taken in taken.items():
        runs = {}
        for config, runs_of in configs_taken.items():
            ordered = sorted(runs_of, key=lambda r: r["rps"])
            runs[config] = {**ordered[len(ordered) // 2], "rounds": [r["rps"] for r in runs_of]}
        results[system] = {"system": system, "runs": runs, "answer_diff": diffs[system]}
    return results


# --- the report -------------------------------------------------------------------------

TARGET_RATIO = 1.0  # gristmill's requests/s over the bare endpoint's, single rows
TARGET_P99_MS = 5.0  # p99 at 8 connections, the logistic regression
TARGET_BIG = 2.0  # 1,000-row requests: gristmill's requests/s over the bare endpoint's
NAMES = {
    "gristmill": "gristmill serve, 1 worker (native API, rows)",
    "gristmill_columns": "gristmill serve, 1 worker (native API, columns)",
    "bare": "bare FastAPI + ONNX Runtime",
    "decode": "decode-only FastAPI endpoint (orjson, no model)",
    "mlflow": "MLflow `models serve` (dataframe_split)",
    "mlserver": "MLServer + mlserver-sklearn (OIP v2 tensor)",
    "gristmill_4w": "gristmill serve, 4 workers (native API, rows)",
}


def cell(run: dict[str, Any] | None) -> str:
    if run is None:
        return "—"
    errors = f" ({run['errors']} errors)" if run["errors"] else ""
    return f"{run['rps']:,.0f} / {run['p50_ms']:.2f} / {run['p99_ms']:.2f}{errors}"


def ratio(mine: dict[str, Any] | None, theirs: dict[str, Any] | None) -> float | None:
    if mine is None or theirs is None or not theirs["rps"]:
        return None
    return float(mine["rps"] / theirs["rps"])


def shown(value: float | None, digits: int = 2) -> str:
    return "—" if value is None else f"{value:.{digits}f}"


def verdict(ok: bool | None) -> str:
    return "—" if ok is None else ("met" if ok else "**missed**")


def summary_rows(exported: dict[str, Exported], results: dict[str, Any]) -> list[str]:
    """The targets per model, one table row each (also what RESULTS.md shows)."""
    lines = []
    for key, systems in results.items():
        runs = {name: s["runs"] for name, s in systems.items()}
        gm, bare = runs.get("gristmill", {}), runs.get("bare", {})
        for n in ("1x1", "1x8", "1x64"):
            r = ratio(gm.get(n), bare.get(n))
            lines.append(
                f"| {LABELS[key]} | rps, 1 row, {n[2:]} conn, gristmill / bare | "
                f"{cell(gm.get(n))} | {cell(bare.get(n))} | {shown(r)} | ≥ {TARGET_RATIO} | "
                f"{verdict(None if r is None else r >= TARGET_RATIO)} |"
            )
        if key == "logreg" and gm.get("1x8"):
            p99 = gm["1x8"]["p99_ms"]
            lines.append(
                f"| {LABELS[key]} | p99, 1 row, 8 conn | {p99:.2f} ms | — | — | "
                f"≤ {TARGET_P99_MS} ms | {verdict(p99 <= TARGET_P99_MS)} |"
            )
        r = ratio(gm.get("1000x8"), bare.get("1000x8"))
        lines.append(
            f"| {LABELS[key]} | rps, 1,000 rows, 8 conn, gristmill (rows) / bare | "
            f"{cell(gm.get('1000x8'))} | {cell(bare.get('1000x8'))} | {shown(r)} | "
            f"≥ {TARGET_BIG} | {verdict(None if r is None else r >= TARGET_BIG)} |"
        )
        floor = runs.get("decode", {})
        r = ratio(floor.get("1000x8"), bare.get("1000x8"))
        lines.append(
            f"| {LABELS[key]} | 〃, decode-only endpoint (orjson, no model) / bare | "
            f"{cell(floor.get('1000x8'))} | {cell(bare.get('1000x8'))} | {shown(r)} | "
            "(the limit for rows) | — |"
        )
        cols = runs.get("gristmill_columns", {})
        r = ratio(cols.get("1000x8"), bare.get("1000x8"))
        lines.append(
            f"| {LABELS[key]} | 〃, gristmill sent columns | {cell(cols.get('1000x8'))} | "
            f"{cell(bare.get('1000x8'))} | {shown(r)} | ≥ {TARGET_BIG} | "
            f"{verdict(None if r is None else r >= TARGET_BIG)} |"
        )
        for peer in ("mlflow", "mlserver"):
            r = ratio(gm.get("1x8"), runs.get(peer, {}).get("1x8"))
            lines.append(
                f"| {LABELS[key]} | rps, 1 row, 8 conn, gristmill / {peer} | "
                f"{cell(gm.get('1x8'))} | {cell(runs.get(peer, {}).get('1x8'))} | "
                f"{shown(r, 1)} | (recorded) | — |"
            )
        four = runs.get("gristmill_4w", {})
        r = ratio(four.get("1x8"), gm.get("1x8"))
        lines.append(
            f"| {LABELS[key]} | rps, 1 row, 8 conn, 4 workers / 1 worker | "
            f"{cell(four.get('1x8'))} | {cell(gm.get('1x8'))} | {shown(r)} | (recorded) | — |"
        )
    return lines


def report(exported: dict[str, Exported], results: dict[str, Any], meta: dict[str, Any]) -> str:
    versions = meta["versions"]
    peers = ", ".join(f"{p} {v}" for p, v in versions.items()) or "none (skipped)"
    load, load_end = meta["load"], meta["load_end"]
    lines = [
        "# Serving benchmark",
        "",
        f"- date: {meta['began']:%Y-%m-%d %H:%M} UTC",
        f"- machine: {machine()}; load average {load[0]:.1f} / {load[1]:.1f} / {load[2]:.1f} "
        f"when the run began, {load_end[0]:.1f} when it ended — the machine is shared with "
        "other work (test suites of other sessions), and the load generator runs on the same "
        "2 cores as the server",
        f"- python {platform.python_version()}; {wrk_version()}, one thread; "
        f"peers in their own venvs: {peers}",
        f"- data: make_classification({meta['rows']:,} rows, 20 features, 10 informative, "
        "random_state=0); both models trained by `gristmill run` (feature set: standardize "
        "the 20 columns) and promoted with `gristmill promote`"
        + (
            f" (run {meta['timings']['run_s']:.0f} s, promotions with compiling "
            f"{meta['timings']['promote_logreg_s']:.0f} s and "
            f"{meta['timings']['promote_forest_s']:.0f} s)"
            if meta["timings"]
            else ""
        ),
        f"- load: wrk, a fixed body, {meta['duration']:.0f} s per run after a 2 s warm-up",
        "",
        "## Servables",
        "",
        "| model | kind | parity rows | classes equal | max abs diff of probabilities "
        "| tolerance | exported pipeline vs ONNX graph (2,000 rows) |",
        "|---|---|---:|---|---:|---:|---:|",
    ]
    for key, item in exported.items():
        parity = item.parity or {}
        lines.append(
            f"| {LABELS[key]} | {item.kind} | {parity.get('rows', '—')} | "
            f"{parity.get('classes_equal', '—')} | {parity.get('max_abs_diff', 0):.2e} | "
            f"{parity.get('tolerance', 0):.0e} | {item.sklearn_vs_onnx:.2e} |"
        )
    lines += ["", "Why each kind (the manifest's reason):", ""]
    lines += [f"- {LABELS[key]}: {item.reason}" for key, item in exported.items()]
    lines += [
        "",
        "## Targets",
        "",
        "Cells: requests/s / p50 ms / p99 ms.",
        "",
        "| model | measure | gristmill | reference | ratio | target | met? |",
        "|---|---|---:|---:|---:|---|---|",
        *summary_rows(exported, results),
    ]
    for key, systems in results.items():
        lines += [
            "",
            f"## {LABELS[key]} (`{MODELS[key]}`): requests/s / p50 ms / p99 ms",
            "",
            "| server | 1 row, 1 conn | 1 row, 8 conn | 1 row, 64 conn | 1,000 rows, 8 conn |",
            "|---|---:|---:|---:|---:|",
        ]
        for name, system in systems.items():
            runs = system["runs"]
            cells = [cell(runs.get(n)) for n in ("1x1", "1x8", "1x64", "1000x8")]
            lines.append(f"| {NAMES.get(name, name)} | " + " | ".join(cells) + " |")
        loads = [r["load"] for s in systems.values() for r in s["runs"].values()]
        lines += [
            "",
            f"Load average after each run: {min(loads):.1f} to {max(loads):.1f}. Every server's "
            "answer to the single row matched the scikit-learn pipeline's (largest "
            "difference of probabilities: "
            + ", ".join(f"{n} {s['answer_diff']:.1e}" for n, s in systems.items())
            + ").",
        ]
    lines += ["", NOTES]
    return "\n".join(lines) + "\n"


NOTES = """## Method

- One server at a time, each started afresh, checked (its answer to the single row against
  the scikit-learn pipeline's), warmed for 2 s at 8 connections, then loaded by wrk with one
  thread and a fixed body: one row at 1, 8 and 64 connections, then 1,000 rows at 8. Errors
  (non-2xx answers, timeouts) are counted and shown next to a cell when any.
- gristmill serve: `gristmill serve --model <model> --port N [--workers 4]` with default
  settings — routing, Prometheus metrics, the prediction log (every request, to the run's
  home) and micro-batching (32 rows, 1 ms) on; the prediction cache off (it is by default,
  and the load repeats one body, so a cache would answer everything). Native API
  `POST /v1/models/<model>/predict` with `{"rows": [{"f0": …, …}]}`; the columns line sends
  the same rows as `{"columns": {"f0": […], …}}`.
- Bare endpoint (bench/serving/bare_server.py): FastAPI on uvicorn (uvloop, httptools, no
  access log, one process, as gristmill runs uvicorn), the very ONNX graph of gristmill's
  servable in one ONNX Runtime session with gristmill's options (one thread); the same
  `rows` body, orjson in and out, arrays built row by row, no validation, logging or metrics.
- MLflow: `mlflow models serve -m <dir> --env-manager local -w 1` with
  `UVICORN_ACCESS_LOG=false` (MLflow runs uvicorn's command line, which logs every request
  by default); the model saved by `mlflow.sklearn.save_model` in MLflow's venv
  (bench/serving/mlflow_model.py) from the exported pipeline, answering `predict_proba`;
  body `dataframe_split`.
- MLServer: `mlserver start <dir>` with mlserver-sklearn, `model-settings.json` naming the
  joblib file; default settings (metrics on) but `debug: false` (no access log line per
  request) and `parallel_workers: 0` — inference in the HTTP process, like every other
  server here: its default separate inference worker dies at start in this venv
  (MLServer 1.7.1 calls `asyncio.get_event_loop()` in the new process, which uvloop 0.23
  refuses: "There is no current event loop"); body: one FP64 tensor `[rows, 20]` named
  `input-0`, outputs `predict` and `predict_proba`.
- The exported pipeline is gristmill's own fitted objects: the standardize step's fitted
  `StandardScaler` and the learner's estimator in a scikit-learn `Pipeline`, dumped with
  joblib (scikit-learn 1.9.1 in every venv), checked equal to gristmill's scorer on 2,000
  rows. gristmill trains forests with `n_jobs=-1`; the exported forest is set to `n_jobs=1`
  (with -1 every single-row prediction starts a thread pool, which no one serving it would
  keep).
- The load generator shares the 2 cores with the server (and with other sessions' work):
  absolute figures are low and noisy; the ratios of servers measured in the same run are
  what to read. For a quiet machine, re-run `python bench/bench_serving.py`.

## Where gristmill serve's time went (py-spy, 2026-12-04, after ADR 33)

py-spy 0.4 `record --pid --gil --threads` on the one-worker server (logistic regression,
default settings: metrics, serving figures and the prediction log on) while wrk loaded it
for 10 s at 2 kHz; shares of the samples in which a thread held the GIL, by the module of
the innermost frame. The machine was shared (load 1-3), which inflates the system calls.

- One row, one connection: uvicorn's HTTP parsing and cycle 25 %, the socket `send` of the
  answer 14 % (one per answer since ADR 33; it was two, the head's alone 12 %), asyncio and
  uvloop's loop 9 %, Starlette's `Request`/`Response` 7 %; ours: the native protocol
  (parse, the numeric block, the answer body) 16 %, the body reader and headers 9 %,
  routing to a version and scoring 5 %, the micro-batcher 1 %, ONNX Runtime 1 %; the
  prediction log's writer thread 3 %.
- One row, eight connections: the socket `send` alone 62 % (on loopback the sender's
  `send` runs the receiver's TCP path and wakes wrk, with the GIL held: uvloop does not
  release it), uvicorn 8 %, ours ~15 % in all, the prediction log's writer 4 %.
- 1,000 rows sent as `rows`: reading the rows into one float64 block (`_numeric_rows`,
  20,000 cells) 43 % and decoding the ~500 KB body (orjson) 22 % — the same two steps
  the bare endpoint takes, which is why `rows` cannot reach 2x bare — then uvicorn 17 %
  and the log's writer 7 %. Sent as `columns`, simdjson reads each column straight into a
  float64 array and the rows step goes.
"""


# --- the run ----------------------------------------------------------------------------


def run_model(
    folder: Path,
    exported: Exported,
    bodies_: dict[str, Path],
    args: argparse.Namespace,
    venvs: dict[str, Path | None],
) -> dict[str, Any]:
    logs = folder / "logs"
    logs.mkdir(exist_ok=True)
    single = tuple(f"1x{c}" for c in args.connections.split(","))
    loads = (*single, "1000x8")
    print(f"{exported.model}:", file=sys.stderr, flush=True)
    ours = gristmill_server(folder, exported, 1)
    targets = [
        Target("gristmill", ours, "rows", loads),
        Target("gristmill_columns", ours, "columns", ("1000x8",)),
        Target("bare", bare_server(folder, exported), "rows", loads),
        Target("decode", decode_server(folder), "rows", ("1000x8",), checked=False),
    ]
    if venvs.get("mlflow"):
        try:
            server = mlflow_server(venvs["mlflow"], exported)  # type: ignore[arg-type]
        except RuntimeError as exc:
            print(f"skipping mlflow for {exported.model}: {exc}", file=sys.stderr)
        else:
            targets.append(Target("mlflow", server, "mlflow", loads))
    if venvs.get("mlserver"):
        server = mlserver_server(venvs["mlserver"], exported)  # type: ignore[arg-type]
        targets.append(Target("mlserver", server, "oip", loads))
    results = measure(targets, exported, bodies_, logs, args.duration, args.rounds)
    workers = Target("gristmill_4w", gristmill_server(folder, exported, 4), "rows", loads)
    results.update(measure([workers], exported, bodies_, logs, args.duration, args.rounds))
    return results


def machine() -> str:
    cpu = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    memory = ""
    try:
        pages = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
        memory = f", {pages / 2**30:.0f} GiB"
    except (ValueError, OSError):
        pass
    return (
        f"{os.cpu_count()} CPUs ({cpu or platform.machine()}){memory}, "
        f"{platform.system()} {platform.release()}"
    )


def wrk_version() -> str:
    done = subprocess.run([WRK, "--version"], capture_output=True, text=True, check=False)
    return (done.stdout or done.stderr).splitlines()[0].split(" Copyright")[0].strip()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--rows", type=int, default=200_000)
    parser.add_argument("--duration", type=int, default=10, help="seconds per wrk run")
    parser.add_argument("--connections", default="1,8,64")
    parser.add_argument(
        "--rounds", type=int, default=1, help="runs of each load (the median one is kept)"
    )
    parser.add_argument("--models", default=",".join(MODELS))
    parser.add_argument("--no-peers", action="store_true", help="gristmill and bare only")
    parser.add_argument(
        "--folder", type=Path, help="work here (kept); a folder already trained is reused"
    )
    args = parser.parse_args()
    if not Path(WRK).exists():
        raise SystemExit("wrk is not installed: apt-get install wrk")
    venvs = {peer: None if args.no_peers else peer_venv(peer) for peer in PEERS}
    load = os.getloadavg()
    began = datetime.now(UTC)
    with tempfile.TemporaryDirectory(prefix="bench_serving_") as scratch:
        folder = args.folder or Path(scratch)
        folder.mkdir(parents=True, exist_ok=True)
        timings: dict[str, float] = {}
        if not (folder / ".gristmill").exists():
            print(f"training both models through gristmill in {folder} ...", file=sys.stderr)
            rows, timings = train(folder, args.rows)
            rows.to_parquet(folder / "held_out.parquet")
        rows = pd.read_parquet(folder / "held_out.parquet")
        exported = export(folder, rows)
        bodies_ = bodies(folder, rows)
        results = {
            key: run_model(folder, exported[key], bodies_, args, venvs)
            for key in args.models.split(",")
        }
    meta = {
        "began": began,
        "load": load,
        "load_end": os.getloadavg(),
        "timings": timings,
        "rows": args.rows,
        "duration": args.duration,
        "versions": {
            peer: peer_version(venv, package)
            for peer, package in (("mlflow", "mlflow"), ("mlserver", "mlserver"))
            if (venv := venvs.get(peer)) is not None
        },
    }
    text = report(exported, results, meta)
    print(text)
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(text)
    RAW.parent.mkdir(parents=True, exist_ok=True)
    RAW.write_text(json.dumps({"results": results, "meta": meta}, default=str, indent=1))


if __name__ == "__main__":
    main()
