"""The join of outcomes and logged predictions, in SQL (used by ``SqlFeedbackStore``).

A pair (outcome, prediction) is joined by the transaction that records its later side
(``stores.feedback``); these functions run inside that transaction, after ``serialize``.
A prediction's winning outcome is the one with the greatest ``actual_order``, a text key
that sorts as (received at, feedback id, position).
"""

from __future__ import annotations

import zlib
from collections import defaultdict
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa

from gristmill.backends.sql.tables import feedback_outcomes, logged_predictions, quality_windows
from gristmill.stores.feedback import LoggedPrediction, Outcome, WindowKey

_outcomes = feedback_outcomes
_logged = logged_predictions
_windows = quality_windows

_CHUNK = 500  # ids per IN (…): well under every database's limit on bound parameters


def _chunks(values: Sequence[Any]) -> Iterator[Sequence[Any]]:
    for start in range(0, len(values), _CHUNK):
        yield values[start : start + _CHUNK]


def _order(outcome: Outcome) -> str:
    """The key that decides which outcome wins: received at, then feedback id, position."""
    at = outcome.received_at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")
    return f"{at}|{outcome.feedback_id}|{outcome.position:09d}"


@dataclass
class _Target:
    """A logged prediction as a join sees it, and changes to it."""

    key: tuple[str, int, str, int]  # request id, row, model, version
    window: WindowKey
    at: datetime
    shadow: bool
    actual: Any = None
    actual_order: str | None = None
    outcomes: int = 0
    late: bool = False
    changed: bool = False


_TARGET_COLUMNS = (
    _logged.c.request_id,
    _logged.c.row,
    _logged.c.model,
    _logged.c.version,
    _logged.c.window_seconds,
    _logged.c.window_start,
    _logged.c.at,
    _logged.c.shadow,
    _logged.c.actual,
    _logged.c.actual_order,
    _logged.c.outcomes,
    _logged.c.late,
)


def _target(row: Any) -> _Target:
    return _Target(
        key=(row.request_id, row.row, row.model, row.version),
        window=WindowKey(row.model, row.version, row.window_seconds, row.window_start),
        at=row.at,
        shadow=row.shadow,
        actual=row.actual,
        actual_order=row.actual_order,
        outcomes=row.outcomes,
        late=row.late,
    )


def serialize(connection: sa.Connection, schema: str | None) -> None:
    """Joins one at a time (SQLite: the write transaction holds the lock already)."""
    if connection.dialect.name == "postgresql":
        key = zlib.crc32(f"gristmill.feedback:{schema or ''}".encode())
        connection.execute(sa.select(sa.func.pg_advisory_xact_lock(key)))


def unrecorded(connection: sa.Connection, outcomes: Sequence[Outcome]) -> list[Outcome]:
    """``outcomes`` not recorded yet (nor earlier in the list)."""
    ids = sorted({o.feedback_id for o in outcomes})
    seen: set[tuple[str, int]] = set()
    for chunk in _chunks(ids):
        query = sa.select(_outcomes.c.feedback_id, _outcomes.c.position).where(
            _outcomes.c.feedback_id.in_(chunk)
        )
        seen.update((f, p) for f, p in connection.execute(query).all())
    fresh = []
    for outcome in outcomes:
        if outcome_id(outcome) not in seen:
            seen.add(outcome_id(outcome))
            fresh.append(outcome)
    return fresh


def targets_of(
    connection: sa.Connection, outcomes: Sequence[Outcome]
) -> dict[tuple[str, int], list[_Target]]:
    """The logged predictions each outcome joins (by feedback id and position)."""
    found: dict[tuple[str, int], list[_Target]] = {}
    named = [o for o in outcomes if o.request_id is not None]
    by_request = _by_request(connection, sorted({o.request_id or "" for o in named}))
    for outcome in named:
        targets = by_request.get((outcome.request_id or "", outcome.row), [])
        found[outcome_id(outcome)] = [
            t for t in targets if outcome.model is None or t.key[2] == outcome.model
        ]
    for outcome in outcomes:
        if outcome.entity is not None:
            found[outcome_id(outcome)] = _entity_targets(connection, outcome)
    return found


def _by_request(
    connection: sa.Connection, request_ids: Sequence[str]
) -> dict[tuple[str, int], list[_Target]]:
    found: dict[tuple[str, int], list[_Target]] = defaultdict(list)
    for chunk in _chunks(request_ids):
        query = sa.select(*_TARGET_COLUMNS).where(_logged.c.request_id.in_(chunk))
        for row in connection.execute(query).all():
            found[(row.request_id, row.row)].append(_target(row))
    return found


def _entity_targets(connection: sa.Connection, outcome: Outcome) -> list[_Target]:
    """The predictions of the request that scored ``outcome``'s entity last by its time."""
    newest = (
        sa.select(_logged.c.request_id, _logged.c.row)
        .where(
            _logged.c.model == outcome.model,
            _logged.c.entity == outcome.entity,
            _logged.c.at <= (outcome.entity_at or outcome.received_at),
        )
        .order_by(_logged.c.at.desc(), _logged.c.shadow)
        .limit(1)
    )
    found = connection.execute(newest).first()
    if found is None:
        return []
    query = sa.select(*_TARGET_COLUMNS).where(
        _logged.c.request_id == found.request_id,
        _logged.c.row == found.row,
        _logged.c.model == outcome.model,
    )
    return [_target(row) for row in connection.execute(query).all()]


def unlogged(
    connection: sa.Connection, predictions: Sequence[LoggedPrediction]
) -> list[LoggedPrediction]:
    """``predictions`` whose key is not recorded yet (nor earlier in the list)."""
    ids = sorted({p.request_id for p in predictions})
    seen: set[tuple[str, int, str, int]] = set()
    for chunk in _chunks(ids):
        query = sa.select(
            _logged.c.request_id, _logged.c.row, _logged.c.model, _logged.c.version
        ).where(_logged.c.request_id.in_(chunk))
        seen.update(tuple(row) for row in connection.execute(query).all())
    fresh = []
    for prediction in predictions:
        key = prediction_key(prediction)
        if key not in seen:
            seen.add(key)
            fresh.append(prediction)
    return fresh


def outcomes_for(
    connection: sa.Connection,
    fresh: Sequence[LoggedPrediction],
    targets: Mapping[tuple[str, int, str, int], _Target],
) -> list[tuple[Outcome, _Target]]:
    """The recorded outcomes that join the ``fresh`` predictions: by request id (joined
    elsewhere already or not), and entity outcomes still waiting."""
    by_request: dict[tuple[str, int], list[_Target]] = defaultdict(list)
    for target in targets.values():
        by_request[(target.key[0], target.key[1])].append(target)
    pairs: list[tuple[Outcome, _Target]] = []
    ids = sorted({p.request_id for p in fresh})
    for chunk in _chunks(ids):
        query = sa.select(_outcomes).where(_outcomes.c.request_id.in_(chunk))
        for row in connection.execute(query).all():
            outcome = _outcome_of(row)
            for target in by_request.get((outcome.request_id or "", outcome.row), []):
                if outcome.model is None or outcome.model == target.key[2]:
                    pairs.append((outcome, target))
    pairs.extend(_waiting_entities(connection, fresh, by_request))
    return pairs


def _waiting_entities(
    connection: sa.Connection,
    fresh: Sequence[LoggedPrediction],
    by_request: Mapping[tuple[str, int], list[_Target]],
) -> Iterable[tuple[Outcome, _Target]]:
    scored = [p for p in fresh if p.entity is not None]
    if not scored:
        return []
    model = scored[0].model
    by_entity: dict[str, list[LoggedPrediction]] = defaultdict(list)
    for prediction in scored:
        by_entity[prediction.entity or ""].append(prediction)
    pairs = []
    for chunk in _chunks(sorted(by_entity)):
        query = sa.select(_outcomes).where(
            _outcomes.c.model == model,
            _outcomes.c.entity.in_(chunk),
            _outcomes.c.status == "waiting",
        )
        for row in connection.execute(query).all():
            outcome = _outcome_of(row)
            by = outcome.entity_at or outcome.received_at
            earlier = [p for p in by_entity[outcome.entity or ""] if p.at <= by]
            if not earlier:
                continue
            newest = max(earlier, key=lambda p: (p.at, not p.shadow))
            for target in by_request[(newest.request_id, newest.row)]:
                pairs.append((outcome, target))
    return pairs


def apply(
    connection: sa.Connection, pairs: Sequence[tuple[Outcome, _Target]]
) -> tuple[WindowKey, ...]:
    """Join each pair: the prediction counts the outcome and takes its value if it is the
    newest; the windows of changed predictions move to a new revision."""
    changed: dict[tuple[str, int, str, int], _Target] = {}
    for outcome, found in pairs:
        target = changed.setdefault(found.key, found)
        target.outcomes += 1
        order = _order(outcome)
        if target.actual_order is None or order > target.actual_order:
            target.actual, target.actual_order = outcome.actual, order
            target.late = outcome.received_at >= target.window.window_end
        target.changed = True
    for target in changed.values():
        request_id, row, model, version = target.key
        connection.execute(
            sa.update(_logged)
            .where(
                _logged.c.request_id == request_id,
                _logged.c.row == row,
                _logged.c.model == model,
                _logged.c.version == version,
            )
            .values(
                actual=target.actual,
                actual_order=target.actual_order,
                outcomes=target.outcomes,
                late=target.late,
            )
        )
    windows = sorted(
        {t.window for t in changed.values()},
        key=lambda w: (w.window_start, w.model, w.version),
    )
    for window in windows:
        connection.execute(
            sa.update(_windows).where(*window_is(window)).values(revision=_windows.c.revision + 1)
        )
    return tuple(windows)


def outcome_id(outcome: Outcome) -> tuple[str, int]:
    return (outcome.feedback_id, outcome.position)


def prediction_key(prediction: LoggedPrediction) -> tuple[str, int, str, int]:
    return (prediction.request_id, prediction.row, prediction.model, prediction.version)


def window_key_of(prediction: LoggedPrediction) -> WindowKey:
    return WindowKey(
        prediction.model, prediction.version, prediction.window_seconds, prediction.window_start
    )


def fresh_target(prediction: LoggedPrediction) -> _Target:
    return _Target(
        prediction_key(prediction), window_key_of(prediction), prediction.at, prediction.shadow
    )


def window_is(key: WindowKey) -> tuple[sa.ColumnElement[bool], ...]:
    return (
        _windows.c.model == key.model,
        _windows.c.version == key.version,
        _windows.c.window_seconds == key.window_seconds,
        _windows.c.window_start == key.window_start,
    )


def in_window(key: WindowKey) -> tuple[sa.ColumnElement[bool], ...]:
    return (
        _logged.c.model == key.model,
        _logged.c.version == key.version,
        _logged.c.window_seconds == key.window_seconds,
        _logged.c.window_start == key.window_start,
    )


def outcome_values(outcome: Outcome, joined_model: str | None) -> dict[str, Any]:
    return {
        "feedback_id": outcome.feedback_id,
        "position": outcome.position,
        "actual": outcome.actual,
        "received_at": outcome.received_at,
        "request_id": outcome.request_id,
        "row": outcome.row,
        "model": outcome.model,
        "entity": outcome.entity,
        "entity_at": outcome.entity_at,
        "status": "waiting" if joined_model is None else "joined",
        "joined_model": joined_model,
    }


def _outcome_of(row: Any) -> Outcome:
    return Outcome(
        feedback_id=row.feedback_id,
        position=row.position,
        actual=row.actual,
        received_at=row.received_at,
        request_id=row.request_id,
        row=row.row,
        model=row.model,
        entity=row.entity,
        entity_at=row.entity_at,
    )


def prediction_values(prediction: LoggedPrediction) -> dict[str, Any]:
    return {
        "request_id": prediction.request_id,
        "row": prediction.row,
        "model": prediction.model,
        "version": prediction.version,
        "at": prediction.at,
        "window_seconds": prediction.window_seconds,
        "window_start": prediction.window_start,
        "prediction": prediction.prediction,
        "probabilities": prediction.probabilities,
        "entity": prediction.entity,
        "shadow": prediction.shadow,
        "actual": None,
        "actual_order": None,
        "outcomes": 0,
        "late": False,
    }
