"""Benchmark: split + train 4 candidates + evaluate — gristmill against a hand-written script.

Usage: ``.venv/bin/python bench/bench_training.py [--rows 200000] [--repeats 1]
[--executors inline,local,dask] [--profile]``

Data: ``--rows`` generated rows (``make_classification``: 20 features, 10 informative, a
binary label), ingested and prepared once (untimed) into the feature set ``bench_v1``.

Work, the same on both sides: a stratified 75/25 split (seed 0); four candidates —
logistic regression (C 1.0), a decision tree (max_depth 12), a random forest (50 trees,
max_depth 12) and histogram gradient boosting (200 iterations); on the test subset ROC AUC,
accuracy, F1 and log loss, the PR AUC, the confusion matrix and the calibration curve, with
the ROC, PR, calibration and confusion-matrix pictures drawn to PNG files; every model saved.

(a) gristmill: ``train(spec, feature_set, stores, executor)`` then ``assess(...)``, the
    executor opened and closed inside the timing (a pool's start-up is charged to it). On top
    of the work it records each candidate's artifact (skops), its lineage and metadata, and
    the leaderboard report. The split itself is decided when the feature set is prepared,
    before its pipeline is fitted (ADR 8), so it is untimed here; the timing includes
    restoring the subsets from the recorded membership by row key.
(b) the peer, hand-written, sequential: ``pd.read_parquet`` of the same rows (the feature
    set has no steps), ``train_test_split``, ``fit`` each estimator in turn with
    scikit-learn's defaults (so gradient boosting uses every core through OpenMP, as in any
    script), ``joblib.dump`` each model, the metrics from ``sklearn.metrics`` and the same
    four pictures with matplotlib.

Targets (issue 4): ``local`` ≤ 0.65 x the script's wall time, ``inline`` ≤ 1.10 x; ``dask``
(a LocalCluster of 2 one-thread workers it starts itself) recorded. Results are written to
bench/results/training.md.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import os
import platform
import pstats
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import joblib
import numpy as np
import pandas as pd
import sklearn
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from sklearn.calibration import calibration_curve
from sklearn.datasets import make_classification
from sklearn.ensemble import HistGradientBoostingClassifier, RandomForestClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import (
    accuracy_score,
    average_precision_score,
    confusion_matrix,
    f1_score,
    log_loss,
    precision_recall_curve,
    roc_auc_score,
    roc_curve,
)
from sklearn.model_selection import train_test_split
from sklearn.tree import DecisionTreeClassifier

from gristmill.config.settings import load_settings
from gristmill.config.spec import PipelineSpec, parse_spec
from gristmill.features.prepare import prepare
from gristmill.runtime.pipeline_run import run_pipeline
from gristmill.runtime.wiring import build_executor, open_services
from gristmill.stores.features import FeatureSet
from gristmill.training.assess import assess
from gristmill.training.splits import split_for
from gristmill.training.train import train

RESULTS = Path(__file__).parent / "results" / "training.md"
TARGETS = {"local": 0.65, "inline": 1.10}
# gristmill's `random_forest` grows its trees on every core (n_jobs=-1), the script's on one:
# the `inline one-thread` side pins the forest to one thread to show the overhead alone.
FEATURES = 20
CANDIDATES: list[dict[str, Any]] = [
    {"name": "logreg", "algorithm": "logistic_regression", "params": {"C": 1.0}},
    {"name": "tree", "algorithm": "decision_tree", "params": {"max_depth": 12}},
    {
        "name": "forest",
        "algorithm": "random_forest",
        "params": {"n_estimators": 50, "max_depth": 12, "random_state": 0},
    },
    {"name": "boosting", "algorithm": "gradient_boosting", "params": {"max_iter": 200}},
]


def make_spec(folder: Path, rows: int) -> PipelineSpec:
    x, y = make_classification(
        n_samples=rows, n_features=FEATURES, n_informative=10, random_state=0
    )
    frame = pd.DataFrame(x, columns=[f"f{i}" for i in range(FEATURES)])
    frame["label"] = y
    frame.to_parquet(folder / "bench.parquet", index=False)
    return parse_spec(
        {
            "name": "bench",
            "sources": {"bench": {"format": "parquet", "path": str(folder / "bench.parquet")}},
            "features": {"bench_v1": {"from": ["bench"], "label": "label"}},
            "split": {"strategy": "stratified", "test_size": 0.25, "seed": 0},
            "train": {"feature_set": "bench_v1", "candidates": CANDIDATES},
            "evaluate": {"metric": "roc_auc", "evaluators": ["accuracy", "f1", "log_loss"]},
        }
    )


# -- the peer ---------------------------------------------------------------------------------


def _picture(out: Path, how: str, *data: Any) -> None:
    figure = Figure(figsize=(6.4, 5.2))
    FigureCanvasAgg(figure)
    ax = figure.subplots()
    getattr(ax, how)(*data)
    ax.set_title(out.stem)
    figure.savefig(out, format="png", dpi=110)


def script(parquet: Path, out: Path) -> dict[str, float]:
    """What a data scientist writes by hand: the same work, one candidate after another."""
    frame = pd.read_parquet(parquet)
    x, y = frame.drop(columns=["label"]), frame["label"]
    x_train, x_test, y_train, y_test = train_test_split(
        x, y, test_size=0.25, random_state=0, stratify=y
    )
    estimators = {
        "logreg": LogisticRegression(C=1.0, max_iter=1000),
        "tree": DecisionTreeClassifier(max_depth=12),
        "forest": RandomForestClassifier(n_estimators=50, max_depth=12, random_state=0),
        "boosting": HistGradientBoostingClassifier(max_iter=200),
    }
    scores = {}
    for name, estimator in estimators.items():
        estimator.fit(x_train, y_train)
        joblib.dump(estimator, out / f"{name}.joblib")
        predicted = estimator.predict(x_test)
        proba = estimator.predict_proba(x_test)[:, 1]
        scores[name] = roc_auc_score(y_test, proba)
        accuracy_score(y_test, predicted)
        f1_score(y_test, predicted)
        log_loss(y_test, proba)
        average_precision_score(y_test, proba)
        matrix = confusion_matrix(y_test, predicted)
        fpr, tpr, _ = roc_curve(y_test, proba)
        precision, recall, _ = precision_recall_curve(y_test, proba)
        fraction, mean = calibration_curve(y_test, proba, n_bins=10)
        _picture(out / f"{name}-roc.png", "plot", fpr, tpr)
        _picture(out / f"{name}-pr.png", "step", recall, precision)
        _picture(out / f"{name}-cal.png", "plot", mean, fraction)
        _picture(out / f"{name}-cm.png", "imshow", matrix)
    return scores


# -- gristmill --------------------------------------------------------------------------------


async def prepared(home: Path, spec: PipelineSpec, backend: str) -> tuple[Any, FeatureSet]:
    settings = load_settings(overrides={"home": str(home), "executor": {"backend": backend}})
    async with open_services(settings) as services:
        report = await run_pipeline(spec, services, timeout=600)
        assert report.run.status == "succeeded", report.run.summary
        (fs,) = services.metadata.feature_sets.list_feature_sets(name="bench_v1")
        return settings, fs


async def training_set(settings: Any, spec: PipelineSpec) -> FeatureSet:
    """``bench_v1`` prepared for training with ``spec``'s split (fitted on its train rows)."""
    async with open_services(settings) as services:
        stores = services.feature_stores()
        (batch,) = services.metadata.batches.list_batches(source="bench")
        assert spec.features is not None
        fit_for = split_for(spec, "bench_v1", stores)
        made = prepare(
            "bench_v1", spec.features["bench_v1"], {"bench": batch}, stores, split=fit_for
        )
        assert made.feature_set is not None
        return made.feature_set


async def through_gristmill(
    settings: Any, spec: PipelineSpec, fs: FeatureSet, images: Path, executor: Any = None
) -> Any:
    """The timed work. Without ``executor``, one is started and stopped inside the timing."""
    async with open_services(settings) as services:
        stores = services.feature_stores()
        started = executor is None
        if executor is None:
            executor = build_executor(settings)
            executor.open()
        try:
            result = train(spec, fs, stores, executor)
            return assess(spec, result, stores, images=images, executor=executor)
        finally:
            if started:
                executor.close()


def one_thread(spec: PipelineSpec) -> PipelineSpec:
    """The spec with the forest on one thread (scikit-learn's default, as in the script)."""
    assert spec.train is not None
    candidates = [
        c.model_copy(update={"params": {**c.params, "n_jobs": 1}})
        if c.algorithm == "random_forest"
        else c
        for c in spec.train.candidates
    ]
    return spec.model_copy(
        update={"train": spec.train.model_copy(update={"candidates": candidates})}
    )


def warm_executor(settings: Any) -> Any:
    """An open executor whose workers have started (as in a running ``gristmill worker``)."""
    executor = build_executor(settings)
    executor.open()
    for task in executor.map(abs, range(4 * executor.capabilities.workers)):
        task.result()
    return executor


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=200_000)
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--executors", default="inline,local,dask")
    parser.add_argument("--profile", action="store_true")
    args = parser.parse_args()
    backends = args.executors.split(",")
    # each executor cold (started inside the timing), and the process-based ones also warm
    sides = [*backends, *(f"{b} warm" for b in backends if b != "inline")]
    if "inline" in backends:  # our overhead alone: the forest on one thread, as in the script
        sides.append("inline one-thread")
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        spec_no_train = make_spec(root, args.rows).model_copy(update={"train": None})
        spec = make_spec(root, args.rows)
        settings, fs = asyncio.run(prepared(root / "home", spec_no_train, "inline"))
        parquet = root / "bench.parquet"  # the feature set has no steps: the same rows
        print(f"{args.rows:,} rows x {FEATURES} features; feature set {fs.feature_set_id}")
        times: dict[str, list[float]] = {"script": []}
        for repeat in range(args.repeats):
            out = root / f"script-{repeat}"
            out.mkdir()
            started = time.perf_counter()
            scores = script(parquet, out)
            times["script"].append(time.perf_counter() - started)
            print(f"script      {times['script'][-1]:7.2f} s  ROC AUC {scores}")
            for side in sides:
                backend, _, warm = side.partition(" ")
                run_settings = settings.model_copy(
                    update={"executor": settings.executor.model_copy(update={"backend": backend})}
                )
                executor = warm_executor(run_settings) if warm == "warm" else None
                side_spec = one_thread(spec) if warm == "one-thread" else spec
                fs = asyncio.run(training_set(settings, side_spec))  # untimed: split at preparation
                images = root / f"{backend}-{warm}-{repeat}"
                profiler = cProfile.Profile() if args.profile else None
                started = time.perf_counter()
                if profiler:
                    profiler.enable()
                work = through_gristmill(run_settings, side_spec, fs, images, executor)
                assessed = asyncio.run(work)
                if profiler:
                    profiler.disable()
                    pstats.Stats(profiler).sort_stats("cumulative").print_stats(25)
                elapsed = time.perf_counter() - started
                if executor is not None:
                    executor.close()
                times.setdefault(side, []).append(elapsed)
                best = {s["candidate"]: round(s["value"], 4) for s in assessed.standings}
                print(f"{side:<13} {elapsed:7.2f} s  ROC AUC {best}")
                # resume would skip trained candidates: start the next repeat from scratch
                spec = spec.model_copy(
                    update={
                        "split": spec.split.model_copy(update={"seed": spec.split.seed + 1})
                        if spec.split
                        else None
                    }
                )
    report(args.rows, times)


def report(rows: int, times: dict[str, list[float]]) -> None:
    peer = min(times["script"])
    lines = [
        "# Training overhead: split + 4 candidates + evaluate",
        "",
        f"Run {datetime.now(UTC):%Y-%m-%d %H:%M} UTC · {rows:,} rows x {FEATURES} features · "
        f"{os.cpu_count()} CPUs · Python {platform.python_version()} · "
        f"scikit-learn {sklearn.__version__} · best of {len(times['script'])}",
        "",
        "| side | wall time (s) | ratio to script | target | met? |",
        "|---|---:|---:|---|---|",
        f"| hand-written script (sequential) | {peer:.2f} | 1.00 | — | — |",
    ]
    for backend, values in times.items():
        if backend == "script":
            continue
        ratio = min(values) / peer
        target = TARGETS.get(backend.split(" ")[0])
        met = "—" if target is None else ("yes" if ratio <= target else "no")
        aim = "recorded" if target is None else f"≤ {target:.2f} x"
        name, _, how = backend.partition(" ")
        detail = {
            "warm": ", workers already running",
            "one-thread": ", the forest on one thread as in the script (our overhead)",
            "": ", started inside the timing" if name != "inline" else "",
        }[how]
        side = f"gristmill, `{name}` executor{detail}"
        lines.append(f"| {side} | {min(values):.2f} | {ratio:.2f} | {aim} | {met} |")
        print(f"{backend}: {ratio:.2f} x the script ({aim}, met: {met})")
    lines += ["", "Method: see the docstring of bench/bench_training.py.", ""]
    RESULTS.write_text("\n".join(lines))
    print(f"written to {RESULTS}")


if __name__ == "__main__":
    np.seterr(all="ignore")
    main()
