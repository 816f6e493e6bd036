"""Prediction log files for tests of monitoring, written by the server's own code.

``log_table`` turns rows (input columns and predictions) logged at chosen times into the
table the prediction server writes (``server.log_tables``); ``write_log`` writes it where
the server would and returns the ``predictions.logged`` event that announces it.
``customers`` makes rows of a small churn model (``CHURN``: ``age``, ``plan``, a class);
``register_with_reference`` registers a version of it, with its drift reference, without
training one.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from gristmill.core.events import PREDICTIONS_LOGGED, Event
from gristmill.features.stores import FeatureStores
from gristmill.monitoring.profile import DriftReference, profiled
from gristmill.monitoring.reference import record_reference
from gristmill.servables.port import InputColumn, Predictions, ServableManifest
from gristmill.server.log_tables import Record, table
from gristmill.stores.models import Candidate, ModelVersion

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


CHURN_INPUTS = {"age": "float64", "plan": "string"}
CHURN = manifest_of("churn", 1, CHURN_INPUTS, classes=["no", "yes"])
"""The servable of ``churn``/1: ``age`` and ``plan`` in, ``no``/``yes`` out."""


def customers(
    rows: int, *, shift: float = 0.0, seed: int = 1, plans: tuple[float, float] = (0.6, 0.4)
) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """``rows`` customers: ``age`` (normal, mean 40 + 10 · ``shift``, sd 10), ``plan``
    (``basic``/``pro`` in the shares ``plans``), and the prediction (``yes`` above 40)."""
    rng = np.random.default_rng(seed)
    age = rng.normal(40 + 10 * shift, 10, rows)
    plan = rng.choice(["basic", "pro"], rows, p=list(plans)).astype(object)
    prediction = np.where(age > 40, "yes", "no").astype(object)
    return {"age": age, "plan": plan}, prediction


def reference_of(
    manifest: ServableManifest, columns: Mapping[str, np.ndarray], predictions: np.ndarray
) -> DriftReference:
    """The drift reference of ``manifest``'s version with these training rows."""
    inputs = pa.table({name: pa.array(values) for name, values in columns.items()})
    classes = None if manifest.classes is None else list(manifest.classes)
    made, skipped = profiled(inputs, pa.array(predictions), classes=classes)
    rows = inputs.num_rows
    return DriftReference(manifest.model, manifest.version, rows, "a test's rows", made, skipped)


def register_with_reference(
    stores: FeatureStores, manifest: ServableManifest = CHURN, *, rows: int = 20_000
) -> ModelVersion:
    """Register ``manifest``'s model version (from a candidate that was never trained) and
    record its drift reference, made of ``customers(rows, seed=0)``."""
    candidate = Candidate(
        candidate_id=f"mc_test_{manifest.model}_{manifest.version}",
        name="test",
        algorithm="logistic_regression",
        task=manifest.task,
        params={},
        feature_set_id="fs-test",
        split_id="sp-test",
        status="trained",
        started_at=datetime.now().astimezone(),
        artifact=manifest.bundle,
    )
    version = stores.metadata.registry.register_version(manifest.model, candidate)
    if version.version != manifest.version:
        raise ValueError(f"{manifest.ref} was registered as version {version.version}")
    columns, predictions = customers(rows, seed=0)
    record_reference(stores, version, reference_of(manifest, columns, predictions))
    return version
