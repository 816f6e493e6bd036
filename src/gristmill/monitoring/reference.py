"""A registered version's drift reference: built from its training rows, stored, found again.

``build_reference`` finds the version's training rows again — the raw rows of the *train*
subset of the split its candidate was trained on, by row key in the raw batches of its
feature set (``training.raw_rows``, as the parity check finds the test rows) — keeps the
columns its servable takes, and profiles them (``monitoring.profile``) on all those rows. A
seeded sample of at most ``SAMPLE_ROWS`` of them is scored by the servable, the prediction
profiled on it, and the sample with its predictions stored as Parquet (kind
``drift_sample``). The reference is stored as JSON (kind ``drift_reference``) and recorded
like a servable: a report of kind ``drift_reference`` about ``<model>/<version>`` naming its
digest (the newest wins). The same version gives the same reference (seeded), so two
builders racing store the same artifacts and the same report.

The deployment stage and ``gristmill promote``/``deploy`` build it when a version is
registered and compiled; the monitoring stage builds it for a version that has none (one
registered before this existed) when its first log file comes.
"""

from __future__ import annotations

import json
import logging
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import numpy as np
import pyarrow as pa

from gristmill.core.ids import digest_json
from gristmill.errors import (
    ConfigError,
    ConflictError,
    DataError,
    GristmillError,
    MissingExtraError,
    NotFoundError,
)
from gristmill.features.rows import without_row_id
from gristmill.features.stores import FeatureStores
from gristmill.monitoring.profile import PREDICTION, DriftReference, from_body, profiled, to_body
from gristmill.monitoring.reference_report import REFERENCE_KIND
from gristmill.servables import storage
from gristmill.servables.port import Servable, ServableManifest
from gristmill.stores.models import ModelVersion
from gristmill.stores.reports import Report

logger = logging.getLogger(__name__)

SAMPLE_KIND = "drift_sample"
MEDIA_TYPE = "application/vnd.gristmill.drift-reference+json"
PARQUET = "application/vnd.apache.parquet"
SAMPLE_ROWS = 50_000
SEED = 0
PREDICT_ROWS = 5_000
"""Rows scored at once for the sample: a chunk the servable refuses loses only its rows."""


def find_reference(stores: FeatureStores, version: ModelVersion) -> DriftReference | None:
    """The newest drift reference recorded for ``version``, or ``None``."""
    reports = stores.metadata.reports.list_reports(
        subject=version.ref, kind=REFERENCE_KIND, limit=1
    )
    if not reports:
        return None
    digest = str(reports[0].body["reference"])
    data = storage.read(stores, digest, f"the drift reference of {version.ref}")
    return from_body(json.loads(data), digest)


def reference_at_registration(stores: FeatureStores, version: ModelVersion) -> DriftReference | str:
    """``version``'s drift reference, built now if it has none — or why it could not be
    (logged: the version still deploys, and the monitoring stage tries again later)."""
    try:
        return ensure_reference(stores, version)
    except (DataError, ConfigError, NotFoundError, ConflictError, MissingExtraError) as exc:
        logger.warning("no drift reference for %s yet: %s", version.ref, exc)
        return str(exc)


def ensure_reference(stores: FeatureStores, version: ModelVersion) -> DriftReference:
    """``version``'s drift reference: the recorded one, else one built now."""
    return find_reference(stores, version) or build_reference(stores, version)


def build_reference(
    stores: FeatureStores, version: ModelVersion, *, servable: Servable | None = None
) -> DriftReference:
    """Build, store and record ``version``'s drift reference (see the module docstring).

    ``DataError`` naming the version and the cause when its training rows cannot be found
    again (the spec, a raw batch or the split's membership is gone).
    """
    from gristmill.servables.loading import load_servable

    rows, source = training_rows(stores, version)
    servable = servable or load_servable(stores, version.model, version.version)
    manifest = servable.manifest
    names = [column.name for column in manifest.inputs]
    absent = [name for name in names if name not in rows.column_names]
    if absent:
        raise DataError(
            f"cannot build the drift reference of {version.ref}: its training rows have no "
            f"column {absent[0]!r}, which its servable takes"
        )
    inputs = rows.select(names)
    sample = _sample(inputs, SAMPLE_ROWS, SEED)
    predicted = predictions(servable, sample)
    columns, skipped = profiled(
        inputs, predicted, classes=_classes(manifest, predicted), entity=manifest.entity
    )
    sample_digest = stores.artifacts.put(
        _parquet(sample.append_column(PREDICTION, predicted)), kind=SAMPLE_KIND, media_type=PARQUET
    ).digest
    reference = DriftReference(
        model=version.model,
        version=version.version,
        rows=inputs.num_rows,
        source=f"{source}; prediction on a sample of {sample.num_rows} of them (seed {SEED})",
        columns=columns,
        skipped=skipped,
        sample=sample_digest,
        seed=SEED,
    )
    return record_reference(stores, version, reference)


def training_rows(stores: FeatureStores, version: ModelVersion) -> tuple[pa.Table, str]:
    """The raw rows ``version`` was trained on and where they came from; ``DataError``
    naming the version and the cause when they cannot be found again."""
    from gristmill.servables.compiling import feature_section
    from gristmill.training.raw_rows import raw_rows

    metadata = stores.metadata
    try:
        candidate = metadata.candidates.get_candidate(version.candidate_id)
        feature_set = metadata.feature_sets.get_feature_set(candidate.feature_set_id)
        split = metadata.splits.get_split(candidate.split_id)
        section = feature_section(stores, candidate)
        table = raw_rows(feature_set, split, "train", section, stores)
    except GristmillError as exc:
        raise DataError(
            f"cannot build the drift reference of {version.ref}: its training rows cannot be "
            f"found again ({exc})"
        ) from exc
    if table.num_rows == 0:
        raise DataError(
            f"cannot build the drift reference of {version.ref}: split {split.split_id} has "
            "no training rows"
        )
    return without_row_id(table), f"{table.num_rows} train rows of split {split.split_id}"


def predictions(servable: Servable, table: pa.Table) -> pa.Array:
    """The servable's prediction of each row of ``table`` (null where it refused a chunk
    of rows, or a filter step rejected the row)."""
    columns = {
        name: table.column(name).to_numpy(zero_copy_only=False) for name in table.column_names
    }
    parts: list[pa.Array] = []
    for start in range(0, table.num_rows, PREDICT_ROWS):
        stop = min(start + PREDICT_ROWS, table.num_rows)
        try:
            answer = servable.predict({n: v[start:stop] for n, v in columns.items()})
        except DataError as exc:
            logger.warning("rows %d to %d left out of the drift reference: %s", start, stop, exc)
            parts.append(pa.nulls(stop - start))
            continue
        values = answer.values
        part = pa.array(values.tolist() if values.dtype == object else values)
        if answer.rejected is not None and answer.rejected.any():
            part = pa.array(part.to_pylist(), mask=np.asarray(answer.rejected, dtype=bool))
        parts.append(part)
    typed = [p for p in parts if not pa.types.is_null(p.type)]
    kind = typed[0].type if typed else pa.null()
    return pa.concat_arrays([p.cast(kind) for p in parts]) if parts else pa.nulls(0)


def record_reference(
    stores: FeatureStores, version: ModelVersion, reference: DriftReference
) -> DriftReference:
    """Store ``reference`` and record it as ``version``'s (a report naming its digest); the
    reference with its ``digest``."""
    data = json.dumps(to_body(reference), sort_keys=True).encode()
    digest = stores.artifacts.put(data, kind=REFERENCE_KIND, media_type=MEDIA_TYPE).digest
    stores.metadata.reports.add_report(
        Report(
            report_id="dr_" + digest_json({"ref": version.ref, "reference": digest})[7:31],
            kind=REFERENCE_KIND,
            subject=version.ref,
            status="passed",
            created_at=datetime.now(UTC),
            body={
                "reference": digest,
                "sample": reference.sample,
                "rows": reference.rows,
                "source": reference.source,
                "columns": [column.name for column in reference.columns],
                "skipped": reference.skipped,
            },
        )
    )
    logger.info(
        "drift reference of %s: %d column(s) from %s",
        version.ref,
        len(reference.columns),
        reference.source,
    )
    return replace(reference, digest=digest)


def _classes(manifest: ServableManifest, predicted: pa.Array) -> list[Any] | None:
    """What the prediction is a category of: a classifier's classes, the clusters seen."""
    if manifest.classes is not None:
        return list(manifest.classes)
    if manifest.output == "cluster":
        return sorted(set(predicted.drop_null().to_pylist()))
    return None


def _sample(table: pa.Table, limit: int, seed: int) -> pa.Table:
    if table.num_rows <= limit:
        return table
    chosen = np.sort(np.random.default_rng(seed).choice(table.num_rows, limit, replace=False))
    return table.take(pa.array(chosen))


def _parquet(table: pa.Table) -> bytes:
    import pyarrow.parquet as pq

    sink = pa.BufferOutputStream()
    pq.write_table(table, sink)
    return bytes(sink.getvalue())
