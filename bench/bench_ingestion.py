"""Benchmark: ingesting a large CSV through gristmill against the bare pyarrow limit.

Usage: ``.venv/bin/python bench/bench_ingestion.py [--rows 1000000] [--repeats 3]``

(a) the limit: ``pyarrow.csv.read_csv`` then ``pyarrow.parquet.write_table``;
(b) ``gristmill.ingestion.ingest`` into a ``ParquetRawStore`` with the SQLite metadata store,
    into a fresh root each repeat (so it is never an idempotent no-op). Best of N each.
The CSV (20 columns: 8 int, 8 float, 3 string, 1 bool) is generated once under bench/.data/.
Results are written to bench/results/ingestion.md.
"""

from __future__ import annotations

import argparse
import os
import platform
import tempfile
import time
from collections.abc import Callable
from contextlib import ExitStack
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from gristmill.backends.parquet.raw import ParquetRawStore
from gristmill.backends.sql.metadata import SqlMetadataStore
from gristmill.config.sources import SourceSpec
from gristmill.ingestion import ingest

HERE = Path(__file__).parent
DATA = HERE / ".data"
RESULTS = HERE / "results" / "ingestion.md"
TARGET = 0.7


def make_csv(rows: int) -> Path:
    path = DATA / f"ingestion_{rows}.csv"
    if path.exists():
        return path
    DATA.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(42)
    words = np.array(["alpha", "beta", "gamma", "delta", "epsilon", "zeta"])
    columns: dict[str, np.ndarray] = {}
    for i in range(8):
        columns[f"int_{i}"] = rng.integers(-1_000_000, 1_000_000, rows)
    for i in range(8):
        columns[f"float_{i}"] = rng.normal(0, 1000, rows).round(4)
    for i in range(3):
        columns[f"text_{i}"] = words[rng.integers(0, len(words), rows)]
    columns["flag"] = rng.random(rows) < 0.5
    partial = path.with_suffix(".tmp")
    pacsv.write_csv(pa.table(columns), partial)
    partial.rename(path)
    return path


def best_of(repeats: int, prepare: Callable[[Path], Callable[[], None]]) -> float:
    """Best wall time of ``repeats`` runs; ``prepare`` (untimed) makes each run's fresh state."""
    times = []
    for _ in range(repeats):
        with tempfile.TemporaryDirectory(prefix="gm-bench-") as scratch:
            run = prepare(Path(scratch))
            start = time.perf_counter()
            run()
            times.append(time.perf_counter() - start)
    return min(times)


def bare(csv_path: Path) -> Callable[[Path], Callable[[], None]]:
    def prepare(scratch: Path) -> Callable[[], None]:
        return lambda: pq.write_table(pacsv.read_csv(csv_path), scratch / "out.parquet")

    return prepare


def gristmill(csv_path: Path, stack: ExitStack) -> Callable[[Path], Callable[[], None]]:
    """A fresh metadata store (opened untimed, as a long-lived service is) and raw root."""
    source = SourceSpec(name="bench", format="csv", path=str(csv_path))

    def prepare(scratch: Path) -> Callable[[], None]:
        metadata = stack.enter_context(SqlMetadataStore(f"sqlite:///{scratch / 'meta.db'}"))
        raw = ParquetRawStore(str(scratch / "raw"), metadata.batches)

        def run() -> None:
            (written,) = ingest(source, raw, metadata)
            if not written.created:
                raise RuntimeError("the benchmark ingestion was a no-op")

        return run

    return prepare


def report(rows: int, size: int, bare_s: float, grist_s: float, repeats: int) -> str:
    ratio = bare_s / grist_s
    cpu = platform.processor() or platform.machine()
    return "\n".join(
        [
            "# Ingestion benchmark",
            "",
            f"- date: {datetime.now(UTC):%Y-%m-%d %H:%M} UTC",
            f"- machine: {os.cpu_count()} CPUs ({cpu}), {platform.system()} {platform.release()}",
            f"- python {platform.python_version()}, pyarrow {pa.__version__}",
            f"- input: CSV, {rows:,} rows x 20 columns, {size / 1e6:.0f} MB; best of {repeats}",
            "",
            "| path | seconds | rows/s | MB/s |",
            "|---|---:|---:|---:|",
            f"| bare pyarrow read_csv + write_table (the limit) | {bare_s:.3f} | "
            f"{rows / bare_s:,.0f} | {size / 1e6 / bare_s:.0f} |",
            f"| gristmill `ingest()` → ParquetRawStore + SQLite catalog | {grist_s:.3f} | "
            f"{rows / grist_s:,.0f} | {size / 1e6 / grist_s:.0f} |",
            "",
            f"gristmill / bare throughput: **{ratio:.2f}** (target ≥ {TARGET}).",
            "",
            "gristmill's time includes hashing the file (SHA-256 content digest, before parsing,",
            "so re-ingesting known bytes skips the parse), the schema check against the previous",
            "batch, writing the parts in parallel into a temporary directory, the rename, and the",
            "catalog and lineage rows in SQLite. It can beat the bare path because the bare",
            "`write_table` writes one file on one thread, while gristmill writes the",
            "`partition_rows` parts (500,000 rows each by default) on parallel threads. Both",
            "read the CSV from the page cache (the bench runs each path repeatedly).",
            "",
        ]
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    csv_path = make_csv(args.rows)
    size = csv_path.stat().st_size
    bare_s = best_of(args.repeats, bare(csv_path))
    with ExitStack() as stack:
        grist_s = best_of(args.repeats, gristmill(csv_path, stack))
    text = report(args.rows, size, bare_s, grist_s, args.repeats)
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(text)
    print(text)


if __name__ == "__main__":
    main()
