"""Feedback from a file: a CSV or Parquet table of outcomes, checked, as ``feedback.received``
events (what ``gristmill feedback FILE`` publishes).

Columns: ``request_id`` (and ``row`` for requests of several rows) or ``entity`` (and
``at``, a time with its zone), and ``actual``; other columns are refused so a misspelt one
is not ignored. Every row is checked before anything is sent; an error names the file, the
row (from 1, the header not counted) and the column.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

from gristmill.core.events import FEEDBACK_RECEIVED, Event
from gristmill.core.feedback import parse_feedback
from gristmill.errors import DataError

COLUMNS = ("request_id", "row", "entity", "at", "actual")


def read_outcomes(path: Path) -> list[dict[str, Any]]:
    """The outcomes of a ``.csv`` or ``.parquet`` file, one JSON object per row (empty cells
    left out)."""
    import pyarrow as pa
    import pyarrow.csv as pv
    import pyarrow.parquet as pq

    suffix = path.suffix.lower()
    if suffix not in (".csv", ".parquet", ".pq"):
        raise DataError(f"{path}: feedback is read from a .csv or .parquet file", file=str(path))
    try:
        if suffix == ".csv":
            keys_as_text = {"request_id": pa.string(), "entity": pa.string()}
            table = pv.read_csv(path, convert_options=pv.ConvertOptions(column_types=keys_as_text))
        else:
            table = pq.read_table(path)
    except (OSError, pa.ArrowException) as exc:
        raise DataError(f"{path} cannot be read: {exc}", file=str(path)) from exc
    unknown = [c for c in table.column_names if c not in COLUMNS]
    if unknown or "actual" not in table.column_names:
        column = unknown[0] if unknown else "actual"
        what = f"unknown column {column!r}" if unknown else "no column 'actual'"
        raise DataError(
            f"{path}: {what}; feedback has request_id (and row) or entity (and at), and actual",
            file=str(path),
            column=column,
        )
    rows = table.to_pylist()
    return [{k: _json(v) for k, v in row.items() if v is not None} for row in rows]


def _json(value: Any) -> Any:
    return value.isoformat() if isinstance(value, datetime) else value


def feedback_events(path: Path, model: str | None, *, per_event: int = 1000) -> list[Event]:
    """The file's outcomes as ``feedback.received`` events of at most ``per_event`` outcomes,
    every one checked first (``DataError`` naming file, row and column)."""
    outcomes = read_outcomes(path)
    if not outcomes:
        raise DataError(f"{path} holds no outcomes", file=str(path))
    events = []
    for start in range(0, len(outcomes), per_event):
        body: dict[str, Any] = {"outcomes": outcomes[start : start + per_event]}
        if model is not None:
            body["model"] = model
        try:
            parsed = parse_feedback(body, what=str(path))
        except DataError as exc:
            raise _at_row(exc, path, start) from exc
        payload = parsed.model_dump(mode="json", exclude_none=True)
        events.append(Event(type=FEEDBACK_RECEIVED, key=model or "", payload=payload))
    return events


def _at_row(error: DataError, path: Path, start: int) -> DataError:
    """``outcomes[3].actual`` of a chunk starting at ``start`` as row ``start + 4``, column
    ``actual``."""
    field = error.column or ""
    if not field.startswith("outcomes["):
        return DataError(str(error), file=str(path), column=field or None)
    index, _, rest = field.removeprefix("outcomes[").partition("]")
    row = start + int(index) + 1
    column = rest.removeprefix(".") or None
    message = str(error).split(" is invalid: ", 1)[-1].removeprefix(f"{field}: ")
    where = f"row {row}" + (f", column {column}" if column else "")
    return DataError(f"{path}, {where}: {message}", file=str(path), row=row, column=column)
