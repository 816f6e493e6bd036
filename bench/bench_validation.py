"""Benchmark: validating a 1M x 20 batch against a hand-written pandas profile, in one run.

Usage: ``.venv/bin/python bench/bench_validation.py [--rows 1000000] [--repeats 3]``

(a) the peer: ``DataFrame.describe(include="all", percentiles=...)`` + ``isna().mean()`` on a
    frame already in pandas (the conversion from Arrow is timed apart and not charged);
(b) ``gristmill.features.validation.validate`` on the Arrow table, no baseline: statistics
    (with distinct counts, which ``describe`` skips for numbers), schema and anomalies;
(c) the same with the previous batch (another 1M rows): its profile, schema comparison, new
    categories and a drift test per column (PSI for numbers, chi-square for categories).
Columns: 8 int, 8 float (5 % missing), 2 categorical strings, 1 text (100k distinct values),
1 bool. Best of N each. Results are written to bench/results/validation.md.
"""

from __future__ import annotations

import argparse
import os
import platform
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import scipy

from gristmill.config.features import ValidationSpec
from gristmill.features.validation import QUANTILES, validate

RESULTS = Path(__file__).parent / "results" / "validation.md"


def make_table(rows: int, seed: int) -> pa.Table:
    rng = np.random.default_rng(seed)
    words = np.array(["alpha", "beta", "gamma", "delta", "epsilon", "zeta"])
    columns: dict[str, pa.Array] = {}
    for i in range(8):
        columns[f"int_{i}"] = pa.array(rng.integers(-1_000_000, 1_000_000, rows))
    for i in range(8):
        missing = rng.random(rows) < 0.05
        columns[f"float_{i}"] = pa.array(rng.normal(0, 1000, rows), mask=missing)
    for i in range(2):
        columns[f"category_{i}"] = pa.array(words[rng.integers(0, len(words), rows)])
    ids = np.char.add("id-", rng.integers(0, 100_000, rows).astype(str))
    columns["text"] = pa.array(ids)
    columns["flag"] = pa.array(rng.random(rows) < 0.5)
    return pa.table(columns)


def best_of(repeats: int, run: Callable[[], object]) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    return min(times)


def pandas_profile(frame: pd.DataFrame) -> None:
    frame.describe(include="all", percentiles=list(QUANTILES))
    frame.isna().mean()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    rows, repeats = args.rows, args.repeats
    table, previous = make_table(rows, seed=1), make_table(rows, seed=2)
    spec = ValidationSpec()

    to_pandas = best_of(repeats, table.to_pandas)
    frame = table.to_pandas()
    peer = best_of(repeats, lambda: pandas_profile(frame))
    alone = best_of(repeats, lambda: validate(table, spec))
    with_previous = best_of(repeats, lambda: validate(table, spec, previous=previous))
    result = validate(table, spec, previous=previous)

    def line(name: str, seconds: float) -> str:
        return f"| {name} | {seconds:.3f} | {rows / seconds:,.0f} | {peer / seconds:.2f} |"

    text = "\n".join(
        [
            "# Validation benchmark",
            "",
            f"- date: {datetime.now(UTC):%Y-%m-%d %H:%M} UTC",
            f"- machine: {os.cpu_count()} CPUs ({platform.machine()}), "
            f"{platform.system()} {platform.release()}",
            f"- python {platform.python_version()}, pyarrow {pa.__version__}, numpy "
            f"{np.__version__}, scipy {scipy.__version__}, pandas {pd.__version__}",
            f"- {rows:,} rows x {table.num_columns} columns; best of {repeats}",
            "",
            "| run | seconds | rows/s | speed vs pandas |",
            "|---|---:|---:|---:|",
            line("pandas `describe(include='all')` + `isna().mean()` (the peer)", peer),
            line("`validate` (no baseline)", alone),
            line("`validate` with the previous batch (drift, schema, categories)", with_previous),
            "",
            f"Arrow to pandas conversion, not charged to the peer: {to_pandas:.3f} s. "
            f"Status of the run with the previous batch: {result.status}, "
            f"{len(result.anomalies)} anomalies, {len(result.drift)} drift tests.",
            "",
        ]
    )
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(text)
    print(text)


if __name__ == "__main__":
    main()
