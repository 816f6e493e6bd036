"""The live quality stage: ``predictions.logged`` → the prediction log's rows recorded for the
join, the label-free estimate's sums added, waiting outcomes joined, windows measured.

Each ``predictions.logged`` event names one Parquet file of the prediction log (one model
version; ``server.prediction_log``). Its answered rows (a row without a prediction — an
entity the online store did not hold — is left out) are recorded in the version's windows
(``stores.feedback``): request id, row, time, prediction, probabilities, and for an entity
request the entity key. For a classifier that logged probabilities, each window's estimate
sums (``evaluation.cbpe``) grow by the file's rows. Outcomes that arrived before their
prediction was written join now, and the windows they join are measured
(``stages.quality_windows``).

Exactly once: a file is recorded once (by its path), in one transaction with its rows, its
sums and its joins; a redelivered event finds it recorded and does nothing. A file that is
gone or cannot be read fails the event (``DataError`` naming it): the log's retention
removed it, or it is not a prediction log file.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC
from pathlib import Path
from typing import Any

import numpy as np

from gristmill.core.events import PREDICTIONS_LOGGED, Event
from gristmill.core.ids import digest_json
from gristmill.errors import DataError
from gristmill.stages.base import StageOutcome
from gristmill.stages.quality_windows import (
    Setups,
    VersionSetup,
    estimate_sums,
    measure_windows,
    quality_demotions,
)
from gristmill.stores.feedback import LoggedPrediction, WindowKey, window_of
from gristmill.stores.metadata import MetadataStore

_COLUMNS = ("request_id", "row", "at", "shadow", "inputs", "status", "prediction")


class LiveQualityStage:
    name = "live-quality"
    consumes = PREDICTIONS_LOGGED

    def __init__(self, metadata: MetadataStore, setups: Setups) -> None:
        self.metadata = metadata
        self.setups = setups

    def idempotency_key(self, event: Event) -> str:
        return digest_json({"event": event.id})

    def handle(self, event: Event) -> StageOutcome:
        model, version, path = _named(event)
        setup = self.setups.of(model, version)
        rows, classes, estimates = read_logged(Path(path), model, version, setup)
        store = self.metadata.feedback
        joined = store.add_predictions(path, rows, classes=classes, estimates=estimates)
        if joined is None:
            return StageOutcome(summary=f"{path} was recorded before; nothing to do")
        measured = measure_windows(store, self.setups, joined.windows)
        return StageOutcome(
            quality_demotions(self.metadata, measured),
            summary=f"{joined.recorded} prediction(s) of {model}/{version} recorded, "
            f"{joined.joined} joined to outcomes waiting; {len(measured)} window(s) measured",
        )


def _named(event: Event) -> tuple[str, int, str]:
    payload = event.payload
    model, version, path = payload.get("model"), payload.get("version"), payload.get("path")
    if not isinstance(model, str) or not isinstance(version, int) or not isinstance(path, str):
        raise DataError(
            f"{event.type} event {event.id} must name model, version and path; its payload "
            f"has {sorted(payload)}",
            column="path",
        )
    return model, version, path


def read_logged(
    path: Path, model: str, version: int, setup: VersionSetup
) -> tuple[list[LoggedPrediction], list[str], dict[WindowKey, dict[str, Any]]]:
    """The answered rows of one prediction log file, the version's classes, and the
    estimate's sums per window (empty unless a classifier logged probabilities)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        table = pq.read_table(path)
    except (OSError, pa.ArrowException) as exc:
        raise DataError(
            f"the prediction log file {path} cannot be read ({exc}); was it removed by the "
            "log's retention?",
            file=str(path),
        ) from exc
    missing = [c for c in _COLUMNS if c not in table.column_names]
    if missing:
        raise DataError(
            f"{path} is not a prediction log file: it has no column {missing[0]!r}",
            file=str(path),
            column=missing[0],
        )
    classes, proba = _probabilities(table)
    seconds = setup.window_seconds
    kept: list[LoggedPrediction] = []
    kept_proba: list[int] = []
    columns = {name: table.column(name).to_pylist() for name in _COLUMNS}
    entities = _entities(columns["inputs"], columns["status"])
    for i, prediction in enumerate(columns["prediction"]):
        if prediction is None:
            continue
        at = columns["at"][i].replace(tzinfo=UTC)
        kept.append(
            LoggedPrediction(
                model=model,
                version=version,
                request_id=columns["request_id"][i],
                row=int(columns["row"][i]),
                at=at,
                window_start=window_of(at, seconds),
                window_seconds=seconds,
                prediction=prediction,
                probabilities=None if proba is None else proba[i].tolist(),
                entity=entities[i],
                shadow=bool(columns["shadow"][i]),
            )
        )
        kept_proba.append(i)
    estimates = {}
    if proba is not None and setup.task == "classification" and kept:
        estimates = _estimates(kept, classes, proba[kept_proba], setup)
    return kept, classes, estimates


def _probabilities(table: Any) -> tuple[list[str], np.ndarray | None]:
    """The classes (the ``probabilities`` struct's fields) and one row of them per row."""
    if "probabilities" not in table.column_names:
        return [], None
    column = table.column("probabilities").combine_chunks()
    classes = [field.name for field in column.type]
    rows = np.column_stack(
        [column.field(i).to_numpy(zero_copy_only=False) for i in range(len(classes))]
    )
    return classes, rows.astype(float)


def _entities(inputs: list[Any], status: list[Any]) -> list[str | None]:
    """An entity request's key per row (its rows have a status; their inputs hold the key
    alone), ``None`` for raw rows."""
    found: list[str | None] = []
    for given, state in zip(inputs, status, strict=True):
        if state is None or not isinstance(given, dict) or len(given) != 1:
            found.append(None)
            continue
        key = next(iter(given.values()))
        found.append(None if key is None else str(key))
    return found


def _estimates(
    rows: list[LoggedPrediction], classes: list[str], proba: np.ndarray, setup: VersionSetup
) -> dict[WindowKey, dict[str, Any]]:
    """The estimate's sums of ``rows`` per window."""
    by_window: dict[WindowKey, list[int]] = defaultdict(list)
    for index, row in enumerate(rows):
        by_window[WindowKey(row.model, row.version, row.window_seconds, row.window_start)].append(
            index
        )
    return {
        key: estimate_sums(classes, [rows[i].prediction for i in picked], proba[picked], setup)
        for key, picked in by_window.items()
    }
