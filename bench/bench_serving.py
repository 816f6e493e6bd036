"""Benchmark: `gristmill serve` against a bare FastAPI + ONNX Runtime endpoint (the limit).

Usage: ``.venv/bin/python bench/bench_serving.py [--seconds 10] [--rows 200000]``

Workload (issue 9): ``make_classification(n_samples=200_000, n_features=20,
n_informative=10, random_state=0)``; a logistic regression and a random forest
(100 trees, depth 8), each trained *through gristmill* (a feature set with a standardize
step) and promoted. Each model is served by ``gristmill serve`` with one worker (prediction
log, metrics and routing on, as shipped) and by ``serving_bare.py`` — FastAPI on uvicorn
calling the same ONNX graph with no routing, logging or metrics. Load: wrk (Debian's
package) with single-row JSON requests on 127.0.0.1 at 1, 8 and 64 connections, then
1,000-row requests at 8 connections, then gristmill with 4 workers; ``--seconds`` each.
MLflow and MLServer are not run here (they need their own environments); see RESULTS.md.

Results are printed and written to bench/results/serving.md.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pandas as pd
from sklearn.datasets import make_classification

HERE = Path(__file__).parent
RESULTS = HERE / "results" / "serving.md"
FEATURES = [f"x{i}" for i in range(20)]
MODELS = {"logreg": "logistic_regression", "forest": "random_forest"}
SPEC = """\
name: bench
sources:
  rows: {{format: csv, path: rows.csv}}
features:
  rows_v1:
    from: [rows]
    label: y
    steps:
      - standardize: {{columns: [{features}]}}
split: {{strategy: stratified, test_size: 0.2, seed: 0}}
train:
  candidates:
    - {{name: logreg, algorithm: logistic_regression}}
    - {{name: forest, algorithm: random_forest, params: {{n_estimators: 100, max_depth: 8}}}}
evaluate: {{metric: accuracy}}
"""
LUA = """\
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
local f = io.open("{body}"); wrk.body = f:read("*a"); f:close()
"""


def gristmill(*args: str, cwd: Path) -> str:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GRISTMILL_")}
    done = subprocess.run(
        [sys.executable, "-m", "gristmill", *args],
        cwd=cwd,
        env=env | {"COLUMNS": "200"},
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        raise SystemExit(f"gristmill {' '.join(args)} failed:\n{done.stdout}\n{done.stderr}")
    return done.stdout


def train(folder: Path, rows: int) -> dict[str, str]:
    x, y = make_classification(n_samples=rows, n_features=20, n_informative=10, random_state=0)
    frame = pd.DataFrame(x, columns=FEATURES)
    frame["y"] = y
    frame.to_csv(folder / "rows.csv", index=False)
    (folder / "bench.yaml").write_text(SPEC.format(features=", ".join(FEATURES)))
    summary = gristmill("run", "bench.yaml", cwd=folder)
    kinds = {}
    for name in MODELS:
        line = next(line for line in summary.splitlines() if f" {name} " in line and "mc_" in line)
        candidate = re.search(r"(mc_\w{24})", line).group(1)  # type: ignore[union-attr]
        promoted = gristmill("promote", candidate, "--model", f"bench_{name}", cwd=folder)
        shown = " ".join(promoted[promoted.index("servable:") :].split())  # unwrapped
        kinds[name] = shown[: shown.index(f"bench_{name}@")].strip()
    return kinds


def graph_of(folder: Path, model: str) -> tuple[Path, list[str]]:
    """The ONNX graph gristmill serves for ``model``, written to a file, and its inputs."""
    from gristmill.config.settings import load_settings
    from gristmill.runtime.wiring import open_stores
    from gristmill.servables import storage
    from gristmill.servables.loading import resolve_version

    settings = load_settings(overrides={"home": str(folder / ".gristmill")})
    with open_stores(settings) as stores:
        version = resolve_version(stores, model, "champion")
        digest = storage.recorded(stores, version)
        assert digest is not None
        body = json.loads(storage.read(stores, digest, "servable"))
        graph = storage.read(stores, body["graph"], "graph")
    path = folder / f"{model}.onnx"
    path.write_bytes(graph)
    return path, [c["name"] for c in body["inputs"]]


@contextmanager
def process(command: list[str], cwd: Path, ready: str) -> Iterator[None]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GRISTMILL_")}
    log = (cwd / f"{command[-1].replace('/', '_')}.log").open("w")
    proc = subprocess.Popen(command, cwd=cwd, env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            try:
                if httpx.get(ready, timeout=1).status_code in (200, 405):
                    break
            except httpx.TransportError:
                time.sleep(0.2)
        else:
            raise SystemExit(f"{command} did not start; see {log.name}")
        yield
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=30)
        log.close()


def wrk(url: str, body: Path, connections: int, seconds: int) -> dict[str, float]:
    script = body.with_suffix(".lua")
    script.write_text(LUA.format(body=body))
    threads = min(connections, 2)
    out = subprocess.run(
        [
            "wrk",
            f"-t{threads}",
            f"-c{connections}",
            f"-d{seconds}s",
            "--latency",
            "-s",
            str(script),
            url,
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    p99 = re.search(r"99%\s+([\d.]+)(us|ms|s)", out)
    scale = {"us": 1e-3, "ms": 1.0, "s": 1e3}
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    return {
        "rps": rps,
        "p99_ms": float(p99.group(1)) * scale[p99.group(2)] if p99 else float("nan"),
        "errors": float(errors.group(1)) if errors else 0.0,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--rows", type=int, default=200_000)
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is needed: apt-get install wrk")
    folder = Path(tempfile.mkdtemp(prefix="bench_serving_"))
    print(f"training through gristmill in {folder} …", flush=True)
    kinds = train(folder, args.rows)
    rng = np.random.default_rng(1)
    one = folder / "one.json"
    one.write_text(
        json.dumps({"rows": [dict(zip(FEATURES, rng.normal(size=20).tolist(), strict=True))]})
    )
    many = folder / "many.json"
    rows = [dict(zip(FEATURES, r.tolist(), strict=True)) for r in rng.normal(size=(1000, 20))]
    many.write_text(json.dumps({"rows": rows}))
    port, bare_port = 18601, 18602
    results: list[tuple[str, str, str, dict[str, float]]] = []
    for name in MODELS:
        model = f"bench_{name}"
        graph, columns = graph_of(folder, model)
        ours = f"http://127.0.0.1:{port}/v1/models/{model}/predict"
        bare = f"http://127.0.0.1:{bare_port}/predict"
        serve = [sys.executable, "-m", "gristmill", "serve", "--port", str(port), "--model", model]
        bare_cmd = [sys.executable, str(HERE / "serving_bare.py"), str(graph), str(bare_port)]
        for label, command, url, ready in (
            ("gristmill", serve, ours, f"http://127.0.0.1:{port}/readyz"),
            ("bare", bare_cmd + columns, bare, bare),
        ):
            with process(command, folder, ready):
                wrk(url, one, 8, 2)  # warm up
                for connections in (1, 8, 64):
                    figures = wrk(url, one, connections, args.seconds)
                    results.append((name, label, f"1 row, {connections} conn", figures))
                    print(name, label, connections, figures, flush=True)
                figures = wrk(url, many, 8, args.seconds)
                results.append((name, label, "1,000 rows, 8 conn", figures))
                print(name, label, "1000 rows", figures, flush=True)
        with process([*serve, "--workers", "4"], folder, f"http://127.0.0.1:{port}/readyz"):
            wrk(ours, one, 8, 2)
            figures = wrk(ours, one, 8, args.seconds)
            results.append((name, "gristmill, 4 workers", "1 row, 8 conn", figures))
            print(name, "4 workers", figures, flush=True)
    write(results, kinds, args)


def write(
    results: list[tuple[str, str, str, dict[str, float]]], kinds: dict[str, str], args: Any
) -> None:
    lines = [
        "# Serving: `gristmill serve` against a bare FastAPI + ONNX Runtime endpoint",
        "",
        f"Run {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())} on {platform.machine()}, "
        f"{os.cpu_count()} CPUs, Python {platform.python_version()}; wrk shares the CPUs; "
        f"{args.seconds} s per point; {args.rows:,} training rows.",
        "",
        "| model | server | load | requests/s | p99 (ms) | non-2xx |",
        "|---|---|---|---:|---:|---:|",
    ]
    for name, label, load, figures in results:
        lines.append(
            f"| {name} | {label} | {load} | {figures['rps']:,.0f} | {figures['p99_ms']:.2f} "
            f"| {figures['errors']:.0f} |"
        )
    lines += ["", "Ratios (gristmill / bare, requests/s):", ""]
    table = {(n, lbl, load): f for n, lbl, load, f in results}
    for name in MODELS:
        for load in ("1 row, 1 conn", "1 row, 8 conn", "1 row, 64 conn", "1,000 rows, 8 conn"):
            ours, bare = table.get((name, "gristmill", load)), table.get((name, "bare", load))
            if ours and bare:
                lines.append(f"- {name}, {load}: {ours['rps'] / bare['rps']:.2f}")
    lines += ["", "Servables:", ""] + [f"- {name}: {kind}" for name, kind in kinds.items()]
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
