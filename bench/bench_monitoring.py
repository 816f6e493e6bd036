"""Benchmark: monitoring. Drift of 1,000,000 logged rows x 20 features, gristmill vs Evidently.

Usage: ``.venv/bin/python bench/bench_monitoring.py drift [--rows 1000000]
[--reference-rows 100000] [--repeats 3]``

The **drift** part, in one run on the same frames: a reference of ``--reference-rows``
rows and a current window of ``--rows`` rows, 15 numeric and 5 categorical features, of
which 4 numeric and 1 categorical are shifted (by 0.6 to 1.5 standard deviations, or new
category shares) and one numeric barely (0.02 sd: drift by no reasonable measure).

* gristmill, **from the two frames**: the reference profiled (what registration does once
  per version), the window counted on its bins from the log's ``inputs`` struct, and every
  column judged (PSI, KS from counts, chi-square) — what Evidently does in one call;
* gristmill, **the window alone** (the reference kept since registration): what the
  monitoring stage pays per window, in one file and in 100 files of ``rows / 100`` (counts
  added file by file, the window judged after each, as the stage does);
* **Evidently** ``Report(metrics=[DataDriftPreset()])`` in its own environment
  (``bench/.venv-evidently``, ``bench/evidently/requirements.txt``), on the same frames
  read into pandas (reading not timed), with its defaults and with PSI for every column.

Best of ``--repeats`` each. Verdicts are compared column by column; the ratio is
Evidently's seconds over gristmill's. Written to bench/results/monitoring_drift.md.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from gristmill.config.monitoring import DriftSpec
from gristmill.monitoring.profile import DriftReference, profiled
from gristmill.monitoring.verdicts import drifted, judged
from gristmill.monitoring.window_counts import added, count_log

HERE = Path(__file__).parent
DATA = HERE / ".data" / "monitoring"
RESULTS = HERE / "results" / "monitoring_drift.md"
EVIDENTLY = HERE / ".venv-evidently" / "bin" / "python"
HOUR = 3600
AT = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
NUMERIC, CATEGORICAL = 15, 5
SHIFTS = {"num_00": 1.5, "num_01": 1.0, "num_02": 0.8, "num_03": 0.6, "num_04": 0.02}
WORDS = np.array(["alpha", "beta", "gamma", "delta", "epsilon", "zeta", "eta", "theta"])
SHARES = np.array([0.3, 0.2, 0.15, 0.1, 0.1, 0.05, 0.05, 0.05])
SHIFTED_SHARES = np.array([0.05, 0.05, 0.1, 0.1, 0.15, 0.15, 0.2, 0.2])


def frame(rows: int, *, seed: int, current: bool) -> pa.Table:
    """20 features: ``num_00`` … ``num_14`` (normal, some with a scale), ``cat_0`` …
    ``cat_4``; in the current frame the columns of ``SHIFTS`` move and ``cat_0``'s
    shares change."""
    rng = np.random.default_rng(seed)
    columns: dict[str, pa.Array] = {}
    for i in range(NUMERIC):
        name = f"num_{i:02d}"
        scale = 1.0 + i
        shift = SHIFTS.get(name, 0.0) if current else 0.0
        columns[name] = pa.array(rng.normal(shift * scale, scale, rows))
    for i in range(CATEGORICAL):
        shares = SHIFTED_SHARES if current and i == 0 else SHARES
        columns[f"cat_{i}"] = pa.array(WORDS[rng.choice(len(WORDS), rows, p=shares)])
    return pa.table(columns)


def as_log(table: pa.Table) -> pa.Table:
    """``table`` as the prediction log holds it: ``at`` and a struct ``inputs``."""
    at = np.full(table.num_rows, np.datetime64(AT.replace(tzinfo=None), "us"))
    inputs = pa.StructArray.from_arrays(
        [table.column(n).combine_chunks() for n in table.column_names], names=table.column_names
    )
    return pa.table({"at": pa.array(at), "inputs": inputs})


def best_of(repeats: int, run: Callable[[], Any]) -> tuple[float, Any]:
    best, result = float("inf"), None
    for _ in range(repeats):
        started = time.perf_counter()
        result = run()
        best = min(best, time.perf_counter() - started)
    return best, result


def ours_from_frames(reference: pa.Table, log: pa.Table) -> dict[str, Any]:
    columns, _ = profiled(reference, None)
    made = DriftReference("bench", 1, reference.num_rows, "bench", columns, digest="d")
    [counts] = count_log(log, made, HOUR, digest="d").values()
    return judged(counts, made, DriftSpec(min_rows=1))


def ours_window(made: DriftReference, log: pa.Table) -> dict[str, Any]:
    [counts] = count_log(log, made, HOUR, digest="d").values()
    return judged(counts, made, DriftSpec(min_rows=1))


def ours_in_files(made: DriftReference, files: list[pa.Table]) -> dict[str, Any]:
    total: dict[str, Any] | None = None
    results: dict[str, Any] = {}
    for file in files:
        [counts] = count_log(file, made, HOUR, digest="d").values()
        total = added(total, counts)
        results = judged(total, made, DriftSpec(min_rows=1))
    return results


def evidently(reference: Path, current: Path, repeats: int) -> dict[str, Any]:
    if not EVIDENTLY.exists():
        sys.exit(
            "Evidently's environment is missing: python3 -m venv bench/.venv-evidently && "
            "bench/.venv-evidently/bin/pip install -r bench/evidently/requirements.txt"
        )
    done = subprocess.run(
        [
            str(EVIDENTLY),
            str(HERE / "evidently" / "bench_evidently.py"),
            "--reference",
            str(reference),
            "--current",
            str(current),
            "--repeats",
            str(repeats),
        ],
        check=True,
        capture_output=True,
        text=True,
    )
    figures: dict[str, Any] = json.loads(done.stdout.splitlines()[-1])
    return figures


def drift_part(rows: int, reference_rows: int, repeats: int) -> str:
    DATA.mkdir(parents=True, exist_ok=True)
    reference = frame(reference_rows, seed=1, current=False)
    current = frame(rows, seed=2, current=True)
    pq.write_table(reference, DATA / "reference.parquet")
    pq.write_table(current, DATA / "current.parquet")
    log = as_log(current)
    load = os.getloadavg()

    full, ours = best_of(repeats, lambda: ours_from_frames(reference, log))
    columns, _ = profiled(reference, None)
    made = DriftReference("bench", 1, reference.num_rows, "bench", columns, digest="d")
    window, _ = best_of(repeats, lambda: ours_window(made, log))
    size = max(1, rows // 100)
    files = [log.slice(start, size) for start in range(0, rows, size)]
    in_files, by_file = best_of(repeats, lambda: ours_in_files(made, files))
    assert drifted(by_file) == drifted(ours)
    peer = evidently(DATA / "reference.parquet", DATA / "current.parquet", repeats)
    after = os.getloadavg()
    return report(rows, reference, ours, (full, window, in_files), peer, (load, after), repeats)


def report(
    rows: int,
    reference: pa.Table,
    ours: dict[str, Any],
    seconds: tuple[float, float, float],
    peer: dict[str, Any],
    loads: tuple[tuple[float, float, float], tuple[float, float, float]],
    repeats: int,
) -> str:
    full, window, in_files = seconds
    default, psi = peer["default"], peer["psi"]
    lines = [
        "# Monitoring benchmark: drift",
        "",
        f"- date: {datetime.now(UTC):%Y-%m-%d %H:%M} UTC; load average before "
        f"{loads[0][0]:.2f}, after {loads[1][0]:.2f} (1 min; shared machine)",
        f"- machine: {os.cpu_count()} CPUs ({platform.machine()}), {platform.system()} "
        f"{platform.release()}; python {platform.python_version()}, pyarrow {pa.__version__}, "
        f"numpy {np.__version__}",
        f"- Evidently {peer['evidently']} (pandas {peer['pandas']}) in bench/.venv-evidently",
        f"- current window {rows:,} rows, reference {reference.num_rows:,} rows, "
        f"{reference.num_columns} features ({NUMERIC} numeric, {CATEGORICAL} categorical); "
        f"best of {repeats}",
        "",
        "| run | seconds | rows/s | Evidently default ÷ this | Evidently PSI ÷ this |",
        "|---|---:|---:|---:|---:|",
    ]

    def line(name: str, took: float) -> str:
        return (
            f"| {name} | {took:.3f} | {rows / took:,.0f} | {default['seconds'] / took:.1f} x "
            f"| {psi['seconds'] / took:.1f} x |"
        )

    lines += [
        line("gristmill, from the two frames (reference profiled + window counted + judged)", full),
        line("gristmill, the window alone (reference kept since registration)", window),
        line("gristmill, the window in 100 files (counts added, judged after each)", in_files),
        line("Evidently `DataDriftPreset()` (defaults)", default["seconds"]),
        line("Evidently `DataDriftPreset(stattest='psi', stattest_threshold=0.2)`", psi["seconds"]),
        "",
        "Verdicts per column (gristmill: PSI > 0.2 on the reference deciles or categories; "
        "Evidently default: normed Wasserstein > 0.1 for numbers, Jensen-Shannon > 0.1 for "
        "categories; Evidently PSI: its own 10 equal-width bins over both frames):",
        "",
        "| column | shift | gristmill PSI | KS p | drift | Evidently default | drift "
        "| Evidently PSI | drift |",
        "|---|---:|---:|---:|---|---:|---|---:|---|",
    ]
    agree = {"default": 0, "psi": 0}
    for name, result in ours.items():
        theirs, their_psi = default["columns"][name], psi["columns"][name]
        agree["default"] += theirs["drifted"] == result["drifted"]
        agree["psi"] += their_psi["drifted"] == result["drifted"]
        shift = SHIFTS.get(name, 0.0) if name.startswith("num") else (1 if name == "cat_0" else 0)
        lines.append(
            f"| {name} | {shift:g} | {result['psi']:.4f} | {_p(result['ks_pvalue'])} "
            f"| {_yes(result['drifted'])} | {theirs['score']:.4f} ({theirs['test']}) "
            f"| {_yes(theirs['drifted'])} | {their_psi['score']:.4f} "
            f"| {_yes(their_psi['drifted'])} |"
        )
    lines += [
        "",
        f"Same verdict as Evidently's defaults on {agree['default']} of {len(ours)} columns, "
        f"as Evidently's PSI on {agree['psi']} of {len(ours)}.",
        "",
    ]
    return "\n".join(lines)


def _p(value: float | None) -> str:
    return "-" if value is None else f"{value:.2g}"


def _yes(value: bool) -> str:
    return "**yes**" if value else "no"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("part", choices=["drift"], help="Which part to run.")
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--reference-rows", type=int, default=100_000)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    text = drift_part(args.rows, args.reference_rows, args.repeats)
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(text)
    print(text)


if __name__ == "__main__":
    main()
