"""Benchmark: batch scoring — ``gristmill score``, a bare script, ``mlflow models predict``.

Usage: ``.venv/bin/python bench/bench_batch.py [--rows 1000000] [--models logreg,forest]
[--executors inline,local] [--rounds 1] [--no-mlflow] [--folder DIR]``

Workload (issue 10): a 1,000,000-row x 20-column Parquet file (``make_classification`` of
the serving benchmark's shape, ``random_state=1``: new rows, not the training ones) scored
to Parquet with the serving benchmark's two models — the logistic regression and the random
forest (100 trees, depth 8), trained *through gristmill* and promoted as ``serving_logreg``
and ``serving_forest`` by bench/bench_serving.py's own ``train`` (reused, not copied).
Each system is one command, timed whole (process start to exit), in the same run:

(a) ``gristmill score MODEL input.parquet --out scores.parquet`` with each executor asked
    for (``inline``: this process; ``local``: a process pool, one worker per CPU), default
    settings otherwise (100,000-row partitions into the score store, then ``--out``);
(b) the limit, bench/batch/bare_score.py: pyarrow reads the file, the same fitted
    scikit-learn pipeline (gristmill's fitted StandardScaler and learner, exported as in
    the serving benchmark; the forest with ``n_jobs=-1`` as gristmill trained it) answers
    ``predict_proba``, pyarrow writes class and probabilities;
(c) ``mlflow models predict -m DIR -i input.csv -t csv -o out.json --env-manager local`` in
    MLflow's own venv (``GRISTMILL_BENCH_MLFLOW_VENV``, default bench/.venv-mlflow), the
    same pipeline saved by bench/serving/mlflow_model.py. MLflow's command reads only CSV or
    JSON and writes JSON: it is given the same rows as CSV (written beforehand, not timed).

All three outputs are checked to agree (classes equal, probabilities within 1e-6) before
anything is reported. With ``--phases`` the time of gristmill's phases (start-up, reading,
scoring, building the score table, writing partitions, ``--out``) is measured in-process
with gristmill's own functions. Results are printed and written to bench/results/batch.md.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import joblib
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
from sklearn.datasets import make_classification

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_serving import (
    FEATURES,
    LABELS,
    MODELS,
    export,
    gristmill_env,
    machine,
    peer_venv,
    peer_version,
    train,
)

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
BARE = HERE / "batch" / "bare_score.py"
MLFLOW_SAVE = HERE / "serving" / "mlflow_model.py"
RESULTS = HERE / "results" / "batch.md"
RAW = HERE / ".data" / "batch.json"
TOLERANCE = 1e-6
TARGET_BARE = 1.1  # gristmill / bare at most
TARGET_MLFLOW = 3.0  # MLflow / gristmill at least


# --- the input and the models -----------------------------------------------------------


def make_input(folder: Path, rows: int) -> tuple[Path, Path]:
    """``input_<rows>.parquet`` (20 float columns) and the same rows as CSV for MLflow."""
    parquet = folder / f"input_{rows}.parquet"
    csv = folder / f"input_{rows}.csv"
    if not parquet.exists():
        values, _ = make_classification(
            n_samples=rows, n_features=20, n_informative=10, random_state=1
        )  # fmt: skip
        table = pa.table({name: values[:, i] for i, name in enumerate(FEATURES)})
        pq.write_table(table, parquet)
        pacsv.write_csv(table, csv)
    return parquet, csv


def batch_pipelines(folder: Path) -> dict[str, Path]:
    """Each model's exported pipeline (bench_serving.export), as batch scoring runs it: the
    forest back to ``n_jobs=-1`` (export sets 1 for single-row serving)."""
    held_out = pd.read_parquet(folder / "held_out.parquet")
    out: dict[str, Path] = {}
    for key, item in export(folder, held_out).items():
        pipeline = joblib.load(item.joblib)
        estimator = pipeline.steps[-1][1]
        if hasattr(estimator, "n_jobs"):
            estimator.set_params(n_jobs=-1)
        path = item.joblib.with_name("batch.joblib")
        joblib.dump(pipeline, path)
        out[key] = path
    return out


def mlflow_model(venv: Path, pipeline: Path) -> Path:
    target = pipeline.parent / "mlflow_batch"
    if not target.exists():
        command = [str(venv / "bin" / "python"), str(MLFLOW_SAVE), str(pipeline), str(target)]
        done = subprocess.run(command, capture_output=True, text=True, check=False)
        if done.returncode != 0:
            raise SystemExit(f"saving the MLflow model failed: {done.stderr[-3000:]}")
    return target


# --- the commands -----------------------------------------------------------------------


def timed(command: list[str], cwd: Path, env: dict[str, str], what: str) -> float:
    """Wall seconds of ``command`` from start to exit; exits naming ``what`` if it fails."""
    start = time.perf_counter()
    done = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, check=False)
    seconds = time.perf_counter() - start
    if done.returncode != 0:
        print(done.stdout[-3000:], done.stderr[-3000:], file=sys.stderr)
        raise SystemExit(f"{what} failed (exit {done.returncode}): {' '.join(command)}")
    return seconds


def run_bare(folder: Path, pipeline: Path, source: Path, out: Path) -> float:
    command = [sys.executable, str(BARE), str(pipeline), str(source), str(out)]
    return timed(command, folder, dict(os.environ), "the bare script")


def run_gristmill(folder: Path, model: str, source: Path, out: Path, executor: str) -> float:
    env = gristmill_env() | {"GRISTMILL_EXECUTOR__BACKEND": executor}
    command = [sys.executable, "-m", "gristmill", "score", model, str(source), "--out", str(out)]
    return timed(command, folder, env, f"gristmill score ({executor})")


def run_mlflow(venv: Path, model: Path, csv: Path, out: Path) -> float:
    command = [str(venv / "bin" / "mlflow"), "models", "predict", "-m", str(model)]
    command += ["-i", str(csv), "-t", "csv", "-o", str(out), "--env-manager", "local"]
    env = dict(os.environ) | {"PATH": f"{venv / 'bin'}{os.pathsep}{os.environ.get('PATH', '')}"}
    return timed(command, out.parent, env, "mlflow models predict")


# --- checking the outputs ---------------------------------------------------------------


def outputs(gristmill: Path, bare: Path, mlflow: Path | None) -> dict[str, np.ndarray]:
    """Each system's probabilities (rows x classes) and classes, in input order."""
    ours = pq.read_table(gristmill).to_pandas().sort_values("row")
    probability = sorted(c for c in ours.columns if c.startswith("p_"))
    limit = pq.read_table(bare).to_pandas()
    found = {
        "gristmill_p": ours[probability].to_numpy(float),
        "gristmill_c": ours["prediction"].to_numpy(),
        "bare_p": limit[probability].to_numpy(float),
        "bare_c": limit["prediction"].to_numpy(),
    }
    if mlflow is not None:
        body = json.loads(mlflow.read_text())
        found["mlflow_p"] = np.asarray(body["predictions"], dtype=float)
        labels = np.array([c.removeprefix("p_") for c in probability])
        labels = labels.astype(found["bare_c"].dtype)  # MLflow answers probabilities only
        found["mlflow_c"] = labels[np.argmax(found["mlflow_p"], axis=1)]
    return found


def check(found: dict[str, np.ndarray], rows: int, what: str) -> dict[str, Any]:
    """Classes equal and probabilities within ``TOLERANCE`` of the bare script's; the figures."""
    out: dict[str, Any] = {}
    for system in ("gristmill", "mlflow"):
        if f"{system}_p" not in found:
            continue
        p, c = found[f"{system}_p"], found[f"{system}_c"]
        if p.shape != found["bare_p"].shape or len(c) != rows:
            raise SystemExit(f"{what}: {system} gave {p.shape} probabilities for {rows} rows")
        diff = float(np.abs(p - found["bare_p"]).max())
        differing = int((c != found["bare_c"]).sum())
        out[system] = {"max_abs_diff": diff, "classes_differing": differing}
        if diff > TOLERANCE or differing:
            raise SystemExit(
                f"{what}: {system} disagrees with the bare script: {differing} class(es) differ, "
                f"probabilities up to {diff:.2e} apart (tolerance {TOLERANCE:.0e})"
            )
    return out


# --- where gristmill's time goes --------------------------------------------------------


def phases(folder: Path, model: str, source: Path) -> dict[str, float]:
    """gristmill's phases, in this process, with its own functions (inline, one partition
    after another): start-up of the command, reading, the servable's feed, scoring, the
    score table, writing the partitions and the ``--out`` copy as they are made."""
    from gristmill.cli.score_copies import ScoresCopy
    from gristmill.config.settings import load_settings
    from gristmill.runtime.wiring import build_score_store, open_stores
    from gristmill.servables.loading import load_servable
    from gristmill.stages import score_jobs, score_rows
    from gristmill.stages.score_inputs import read_file
    from gristmill.stores.scores import ScoreJob

    out: dict[str, float] = {}
    env = gristmill_env()
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "gristmill", "--version"], env=env, check=True,
                   capture_output=True)  # fmt: skip
    out["start (python -m gristmill --version)"] = time.perf_counter() - start
    start = time.perf_counter()
    code = "import gristmill.cli.app, gristmill.stages.score_jobs, gristmill.runtime.wiring"
    subprocess.run([sys.executable, "-c", code], env=env, check=True, capture_output=True)
    out["imports of the score command"] = time.perf_counter() - start
    settings = load_settings(overrides={"home": str(folder / ".gristmill")})
    with open_stores(settings) as stores:
        start = time.perf_counter()
        servable = load_servable(stores, model, threads=0)  # as an inline job loads it
        out["load the servable"] = time.perf_counter() - start
        start = time.perf_counter()
        table = read_file(str(source))
        out["read the Parquet file"] = time.perf_counter() - start
        store = build_score_store(settings, str(folder / "phase_scores"))
        copy = ScoresCopy(str(folder / "phase_out.parquet"))
        size = settings.scoring.partition_rows
        names = ("feed", "servable.predict", "score table", "write", "--out copy")
        sums = dict.fromkeys(names, 0.0)
        job = f"phases_{model}_{time.time_ns()}"
        total = -(-table.num_rows // size)
        for index in range(total):
            part = table.slice(index * size, size)
            work = score_jobs.PartitionWork(
                job, model, 1, index, index * size, str(source), part, "raw", (), servable, store
            )
            start = time.perf_counter()
            feed = score_rows.numeric_block(part, servable.manifest.inputs)
            sums["feed"] += time.perf_counter() - start
            start = time.perf_counter()
            answer = servable.predict(feed if feed is not None else {})
            sums["servable.predict"] += time.perf_counter() - start
            start = time.perf_counter()
            scores = score_rows.scores_table(work, np.arange(part.num_rows), [answer])
            sums["score table"] += time.perf_counter() - start
            start = time.perf_counter()
            store.write_partition(job, index, scores, {"rows": scores.num_rows, "bad_rows": 0})
            sums["write"] += time.perf_counter() - start
            start = time.perf_counter()
            copy.take(index, scores)
            sums["--out copy"] += time.perf_counter() - start
        out |= {f"partitions: {k}": v for k, v in sums.items()}
        store.commit(job, {"job_id": job, "partitions": list(range(total))})
        start = time.perf_counter()
        copy.finish(store, ScoreJob(job, model, str(source), "succeeded",
                                    datetime.now(UTC), partitions_total=total))  # fmt: skip
        out["--out: put in place"] = time.perf_counter() - start
    return out


# --- the report -------------------------------------------------------------------------


def ratio(a: float | None, b: float | None) -> float | None:
    return None if a is None or b is None or b == 0 else a / b


def shown(value: float | None, digits: int = 2) -> str:
    return "—" if value is None else f"{value:.{digits}f}"


def verdict(met: bool | None) -> str:
    return "—" if met is None else ("yes" if met else "**no**")


def report(results: dict[str, Any], meta: dict[str, Any]) -> str:
    load, load_end = meta["load"], meta["load_end"]
    lines = [
        "# Batch scoring benchmark",
        "",
        f"- date: {meta['began']:%Y-%m-%d %H:%M} UTC",
        f"- machine: {machine()}; load average {load[0]:.1f} / {load[1]:.1f} / {load[2]:.1f} "
        f"when the run began, {load_end[0]:.1f} when it ended — the machine is shared with "
        "other sessions' work, so absolute seconds are noisy; the ratios of commands run "
        "one after another in the same run are what to read",
        f"- python {platform.python_version()}; MLflow {meta['mlflow'] or 'skipped'} in its "
        "own venv",
        f"- input: {meta['rows']:,} rows x 20 float64 columns, Parquet "
        f"({meta['input_mb']:.0f} MB; CSV for MLflow {meta['csv_mb']:.0f} MB)",
        f"- models: bench_serving's, trained through gristmill on "
        f"make_classification(200,000 rows, 20 features, 10 informative, random_state=0); "
        f"{meta['rounds']} round(s), the median kept",
        "",
        "## Wall seconds of the whole command",
        "",
        "| model | bare script | "
        + " | ".join(f"gristmill ({e})" for e in meta["executors"])
        + " | MLflow | gristmill / bare (target ≤ 1.1) | MLflow / gristmill (target ≥ 3) |",
        "|---|---:|" + "---:|" * len(meta["executors"]) + "---:|---:|---:|",
    ]
    for key, result in results.items():
        best = result["best_executor"]
        g = result["gristmill"][best]
        r_bare = ratio(g, result["bare"])
        r_mlflow = ratio(result.get("mlflow"), g)
        cells = [shown(result["gristmill"][e], 1) for e in meta["executors"]]
        lines.append(
            f"| {LABELS[key]} | {shown(result['bare'], 1)} | "
            + " | ".join(cells)
            + f" | {shown(result.get('mlflow'), 1)} | {shown(r_bare)} "
            f"{verdict(None if r_bare is None else r_bare <= TARGET_BARE)} | "
            f"{shown(r_mlflow, 1)} "
            f"{verdict(None if r_mlflow is None else r_mlflow >= TARGET_MLFLOW)} |"
        )
    lines += [
        "",
        "Ratios use gristmill's fastest executor of the run "
        "("
        + ", ".join(f"{LABELS[k]}: `{r['best_executor']}`" for k, r in results.items())
        + "). Every round's seconds: "
        + "; ".join(f"{k} {json.dumps(r['rounds'])}" for k, r in results.items())
        + ".",
    ]
    lines += ["", "## Outputs agree", ""]
    for key, result in results.items():
        agree = ", ".join(
            f"{s}: max |Δp| {v['max_abs_diff']:.1e}, {v['classes_differing']} classes differ"
            for s, v in result["agree"].items()
        )
        lines.append(f"- {LABELS[key]}, against the bare script: {agree}")
    if meta.get("phases"):
        lines += ["", "## Where gristmill's time goes (in-process, `inline`, seconds)", ""]
        lines += ["| phase | " + " | ".join(LABELS[k] for k in meta["phases"]) + " |"]
        lines += ["|---|" + "---:|" * len(meta["phases"])]
        names = next(iter(meta["phases"].values())).keys()
        for name in names:
            cells = [f"{meta['phases'][k][name]:.2f}" for k in meta["phases"]]
            lines.append(f"| {name} | " + " | ".join(cells) + " |")
    lines += ["", NOTES]
    return "\n".join(lines) + "\n"


NOTES = """## Method

- Each command is started as its own process and timed from start to exit (Python start-up
  and imports included), one after another: bare script, gristmill with each executor,
  MLflow; then the outputs are read and compared (classes equal, probabilities within 1e-6
  of the bare script's, row by row in input order).
- gristmill: `python -m gristmill score MODEL input.parquet --out scores.parquet` in the
  folder of the trained models (embedded SQLite metadata, local score store), the executor
  set by `GRISTMILL_EXECUTOR__BACKEND`; default settings otherwise (100,000-row partitions).
  The command records the job, writes the score store (a Parquet file per partition in
  layout 2, ADR 25: job id, model, version, input id, row, prediction, a probability per
  class; then the manifest), writes `--out` from the same tables as the partitions are
  scored (renamed into place at the end), and records the lineage. It scores through the
  version's compiled ONNX servable: the numbers are read from Arrow into one matrix per
  partition; `inline` cuts each partition into pieces scored on one thread per core (one
  ONNX Runtime thread each), `local` scores whole partitions in one worker process per core
  (one thread each).
- The bare script reads the file with pyarrow, converts it to pandas (the pipeline was
  fitted with column names), calls `predict_proba` once and writes class and probabilities.
  The forest runs with `n_jobs=-1` (2 threads), as gristmill trained it.
- MLflow: `mlflow models predict --env-manager local`, the model saved by
  `mlflow.sklearn.save_model(pyfunc_predict_fn="predict_proba")`; its command reads CSV or
  JSON only (no Parquet) and writes JSON `{"predictions": [[p0, p1], …]}`: it is given the
  same rows as CSV and its class is the largest probability's.
- `--phases` times gristmill's steps in the bench's own process with gristmill's functions
  (the servable loaded as `inline` loads it); the start-up and imports rows are separate
  processes. They say where the time goes, not the command's total.

## What changed (2026-12-03, i10-batchspeed), and what is left

Profiled with py-spy (`py-spy record --threads -f raw`) on the 1M-row file:

- **The servable's feed.** A partition's columns were converted one by one (`to_numpy`,
  which imports pandas), checked with a BLAS dot product each (OpenBLAS threads fighting
  ONNX Runtime's for the two cores) and stacked again: 1.7-3 s of the logistic
  regression's 1M rows for a graph that runs in 0.3 s. Now a partition of finite numbers is
  copied once from Arrow's buffers into the row-major matrix the graph takes
  (`stages.score_rows.numeric_block`), checked by one sum.
- **The rows written.** `row_id` (a text per row) is gone; `input_id` + `row` name a row
  and `job_id`, `model`, `input_id` are dictionary-encoded; Parquet dictionaries only for
  text columns (a dictionary of probabilities was built and dropped on every page):
  a 100,000-row partition writes in 12-16 ms instead of 28-41 ms. Snappy kept (no
  compression saves 1-4 ms per partition for 20 % more bytes).
- **`--out`** is written from the tables as the partitions are scored, not read back from
  the store (was 0.7-0.9 s read + 0.5-0.9 s write).
- **No pandas.** The score rows are built from numpy buffers: a job over numbers no longer
  imports pandas (0.3-0.5 s here).
- **Threads.** ONNX Runtime's own pool (`intra_op_num_threads` = cores) splits each operator
  across its threads and waits for the slowest; with other processes on the two cores it
  ran the forest 2-4x *slower* than one thread, and two threads running one session did the
  work of one. The `inline` executor now cuts a partition into pieces taken by one thread
  per core, each with a session of its own on one ONNX Runtime thread; `local`
  workers (one per core, one thread each) open a version's sessions once per process
  instead of once per partition, and partitions are copied for them as they are submitted.

Left: start-up and the CLI's imports (typer, rich, SQLAlchemy, pydantic, pyarrow: ~1-2 s
of a 3 s job here) are shared by every command; `local` still pays its pool's start and
sends each partition's rows to a worker (on 2 shared cores `inline` and `local` trade
places from round to round); the forest's time is ONNX Runtime's tree ensemble, which costs
the CPU scikit-learn's does on these rows (0.55 against 0.58 CPU seconds per 100,000 rows,
one thread each): the command matches the bare script, and 3x MLflow — whose command adds
only a CSV read and a JSON write to that script — would need a faster tree scorer.
"""


# --- the run ----------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--models", default=",".join(MODELS))
    parser.add_argument("--executors", default="inline,local")
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--no-mlflow", action="store_true")
    parser.add_argument("--phases", action="store_true", help="time gristmill's phases too")
    parser.add_argument("--folder", type=Path, help="work here (kept); trained models are reused")
    args = parser.parse_args()
    venv = None if args.no_mlflow else peer_venv("mlflow")
    executors = args.executors.split(",")
    load = os.getloadavg()
    began = datetime.now(UTC)
    results: dict[str, Any] = {}
    phase_times: dict[str, dict[str, float]] = {}
    with tempfile.TemporaryDirectory(prefix="bench_batch_") as scratch:
        folder = args.folder or Path(scratch)
        folder.mkdir(parents=True, exist_ok=True)
        if not (folder / ".gristmill").exists():
            print(f"training both models through gristmill in {folder} ...", file=sys.stderr)
            held_out, _ = train(folder, 200_000)
            held_out.to_parquet(folder / "held_out.parquet")
        pipelines = batch_pipelines(folder)
        source, csv = make_input(folder, args.rows)
        out = folder / "out"
        out.mkdir(exist_ok=True)
        for key in args.models.split(","):
            model = MODELS[key]
            mlflow_dir = None if venv is None else mlflow_model(venv, pipelines[key])
            rounds: list[dict[str, float]] = []
            for number in range(args.rounds):
                print(f"{model}, round {number + 1} ...", file=sys.stderr, flush=True)
                seconds = {"bare": run_bare(folder, pipelines[key], source, out / "bare.parquet")}
                for executor in executors:
                    seconds[executor] = run_gristmill(
                        folder, model, source, out / f"gristmill_{executor}.parquet", executor
                    )
                if venv is not None and mlflow_dir is not None:
                    seconds["mlflow"] = run_mlflow(venv, mlflow_dir, csv, out / "mlflow.json")
                print(f"  {json.dumps({k: round(v, 2) for k, v in seconds.items()})}",
                      file=sys.stderr, flush=True)  # fmt: skip
                rounds.append(seconds)
            median = {k: statistics.median(r[k] for r in rounds) for k in rounds[0]}
            best = min(executors, key=lambda e: median[e])
            agree: dict[str, Any] = {}
            for executor in executors:
                found = outputs(
                    out / f"gristmill_{executor}.parquet",
                    out / "bare.parquet",
                    None if venv is None else out / "mlflow.json",
                )
                agree = check(found, args.rows, f"{model} ({executor})")
            results[key] = {
                "bare": median["bare"],
                "gristmill": {e: median[e] for e in executors},
                "mlflow": median.get("mlflow"),
                "best_executor": best,
                "rounds": [{k: round(v, 2) for k, v in r.items()} for r in rounds],
                "agree": agree,
            }
            if args.phases:
                phase_times[key] = phases(folder, model, source)
        meta = {
            "began": began,
            "load": load,
            "load_end": os.getloadavg(),
            "rows": args.rows,
            "rounds": args.rounds,
            "executors": executors,
            "input_mb": source.stat().st_size / 2**20,
            "csv_mb": csv.stat().st_size / 2**20,
            "mlflow": None if venv is None else peer_version(venv, "mlflow"),
            "phases": phase_times,
        }
    text = report(results, meta)
    print(text)
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(text)
    RAW.parent.mkdir(parents=True, exist_ok=True)
    RAW.write_text(json.dumps({"results": results, "meta": meta}, default=str, indent=1))


if __name__ == "__main__":
    main()
