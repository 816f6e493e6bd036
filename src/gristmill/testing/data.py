"""Test data builders: generated tables, scikit-learn's bundled datasets, and input files.

Nothing here downloads: the datasets are the ones scikit-learn ships in its wheel.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq


def numbers_table(rows: int, *, seed: int = 0) -> pa.Table:
    """``rows`` generated rows: ``id`` (0…), ``amount`` (float), ``kind`` (text), ``ok`` (bool)."""
    rng = np.random.default_rng(seed)
    kinds = np.array(["red", "green", "blue"])
    return pa.table(
        {
            "id": np.arange(rows, dtype=np.int64),
            "amount": rng.normal(100, 15, rows).round(3),
            "kind": kinds[rng.integers(0, len(kinds), rows)],
            "ok": rng.random(rows) < 0.5,
        }
    )


def wine_table() -> pa.Table:
    """scikit-learn's bundled wine dataset (178 rows, 13 features and ``target``)."""
    from sklearn.datasets import load_wine

    frame = load_wine(as_frame=True).frame
    return pa.Table.from_pandas(frame, preserve_index=False).replace_schema_metadata(None)


def housing_table(rows: int = 20_640, *, seed: int = 0) -> pa.Table:
    """Generated rows shaped like California housing (8 features), with an integer ``price``.

    ``price`` holds whole dollars (to the hundred) with thousands of distinct values: a
    regression target that a reader could mistake for classes.
    """
    rng = np.random.default_rng(seed)
    income = rng.gamma(3.0, 1.3, rows).round(4)
    return pa.table(
        {
            "MedInc": income,
            "HouseAge": rng.integers(1, 53, rows),
            "AveRooms": rng.normal(5.4, 2.0, rows).round(6),
            "AveBedrms": rng.normal(1.1, 0.4, rows).round(6),
            "Population": rng.integers(3, 35_000, rows),
            "AveOccup": rng.normal(3.0, 1.0, rows).round(6),
            "Latitude": rng.uniform(32.5, 42.0, rows).round(2),
            "Longitude": rng.uniform(-124.3, -114.3, rows).round(2),
            "price": (
                (income * 400 + rng.normal(0, 300, rows)).clip(150, 5_000).round() * 100
            ).astype(np.int64),
        }
    )


def write_csv(path: Path, table: pa.Table, *, delimiter: str = ",") -> Path:
    """``table`` as a CSV file with a header line (parents created)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    pacsv.write_csv(table, path, pacsv.WriteOptions(delimiter=delimiter, quoting_style="none"))
    return path


def write_parquet(path: Path, table: pa.Table, *, row_group_rows: int | None = None) -> Path:
    """``table`` as a Parquet file (parents created)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(table, path, row_group_size=row_group_rows)
    return path


def write_jsonl(path: Path, records: Iterable[dict[str, Any]]) -> Path:
    """One JSON object per line (parents created)."""
    return write_lines(path, [json.dumps(record) for record in records])


def write_lines(path: Path, lines: Sequence[str]) -> Path:
    """Text lines as given (with a final newline), for hand-made good and bad inputs."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(f"{line}\n" for line in lines))
    return path
