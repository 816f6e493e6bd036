"""Prediction log files for tests of monitoring, written by the server's own code.

``log_table`` turns rows (input columns and predictions) logged at chosen times into the
table the prediction server writes (``server.log_tables``); ``write_log`` writes it where
the server would and returns the ``predictions.logged`` event that announces it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from gristmill.core.events import PREDICTIONS_LOGGED, Event
from gristmill.servables.port import InputColumn, Predictions, ServableManifest
from gristmill.server.log_tables import Record, table

REQUEST_ROWS = 100
"""Rows per logged request (a request's rows share its time)."""


def manifest_of(
    model: str, version: int, inputs: Mapping[str, str], classes: Sequence[Any] | None = None
) -> ServableManifest:
    """A servable manifest of ``model``/``version`` taking ``inputs`` (name → column type)."""
    return ServableManifest(
        model=model,
        version=version,
        kind="native",
        reason="a test's",
        digest="sha256:test",
        bundle="sha256:bundle",
        pipeline=None,
        task="classification" if classes is not None else "regression",
        output="class" if classes is not None else "number",
        inputs=tuple(InputColumn(name, kind) for name, kind in inputs.items()),  # type: ignore[arg-type]
        classes=None if classes is None else tuple(classes),
    )


def log_table(
    manifest: ServableManifest,
    columns: Mapping[str, np.ndarray],
    predictions: np.ndarray,
    at: Sequence[datetime] | datetime,
) -> pa.Table:
    """The log rows of ``predictions`` for ``columns``, one request per ``REQUEST_ROWS``
    rows; request ``i`` logged at ``at[i]`` (or all at ``at``)."""
    rows = len(predictions)
    records: list[Record] = []
    for number, start in enumerate(range(0, rows, REQUEST_ROWS)):
        stop = min(start + REQUEST_ROWS, rows)
        when = at if isinstance(at, datetime) else at[number]
        records.append(
            (
                f"r{number}",
                "native",
                manifest,
                when.timestamp(),
                0.001,
                {name: values[start:stop] for name, values in columns.items()},
                Predictions(predictions[start:stop]),
                False,
            )
        )
    names = tuple(columns)
    return table(names, records)


def write_log(
    folder: Path,
    manifest: ServableManifest,
    columns: Mapping[str, np.ndarray],
    predictions: np.ndarray,
    at: Sequence[datetime] | datetime,
    *,
    name: str,
) -> Event:
    """Write the log file ``<folder>/<model>/<version>/<name>.parquet``; the
    ``predictions.logged`` event the server would publish for it."""
    import pyarrow.parquet as pq

    rows = log_table(manifest, columns, predictions, at)
    path = folder / manifest.model / str(manifest.version) / f"{name}.parquet"
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(rows, path)
    return Event(
        type=PREDICTIONS_LOGGED,
        key=manifest.model,
        payload={
            "model": manifest.model,
            "version": manifest.version,
            "path": str(path.resolve()),
            "records": -(-len(predictions) // REQUEST_ROWS),
        },
    )
