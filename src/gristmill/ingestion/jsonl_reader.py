"""JSON Lines files → Arrow: parsed by pyarrow; on a parse error each line is checked to name it."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pyarrow as pa
from pyarrow import json as pajson

from gristmill.config.sources import SourceSpec
from gristmill.errors import DataError, EmptyInputError
from gristmill.ingestion.bad_rows import BadRow
from gristmill.ingestion.column_types import arrow_types, cast_declared
from gristmill.ingestion.extract import STREAM_ABOVE_BYTES, Extract, repartition, whole_table
from gristmill.ingestion.files import InputFile, translate_errors
from gristmill.ingestion.records import records_table

_BLOCK_BYTES = 16 << 20


def read_jsonl(
    file: InputFile,
    spec: SourceSpec,
    *,
    content_digest: str,
    stream_above: int = STREAM_ABOVE_BYTES,
) -> Extract:
    """Read one JSON object per line; a bad row's number is its 1-based line number.

    pyarrow parses the file in parallel. Only when it fails are the lines checked one by one
    (in Python) to find each broken line and each value whose JSON type differs from the
    column's, so a good file never pays for that.
    """
    if file.size == 0:
        raise EmptyInputError(
            f"{file.url} is empty; give it one JSON object per line", file=file.url
        )
    if file.size > stream_above and spec.on_bad_rows == "fail":
        return _streamed(file, spec, content_digest)
    bad_rows: list[BadRow] = []
    try:
        table = translate_errors(
            file.url, lambda: pajson.read_json(file.source(), **_options(spec))
        )
    except pa.ArrowInvalid:
        table, bad_rows = _read_lines(file, spec)
    else:
        if spec.columns:
            table = _cast_good(table, spec, file)
    if table.num_rows == 0 and not bad_rows:
        raise EmptyInputError(f"{file.url} has no JSON objects", file=file.url)
    return whole_table(
        table,
        origin=file.url,
        content_digest=content_digest,
        partition_rows=spec.partition_rows,
        bad_rows=bad_rows,
        size_bytes=file.size,
    )


def _options(spec: SourceSpec, *, threads: bool = True) -> dict[str, Any]:
    declared = arrow_types(spec.columns)
    return {
        "read_options": pajson.ReadOptions(use_threads=threads, block_size=_BLOCK_BYTES),
        "parse_options": pajson.ParseOptions(
            explicit_schema=pa.schema(list(declared.items())) if declared else None,
            unexpected_field_behavior="infer",
        ),
    }


def _cast_good(table: pa.Table, spec: SourceSpec, file: InputFile) -> pa.Table:
    """Put declared columns in declaration order's types (a no-op when pyarrow parsed them)."""
    table, _ = cast_declared(table, spec.columns or {}, file=file.url, row_number=lambda _: None)
    return table


def _read_lines(file: InputFile, spec: SourceSpec) -> tuple[pa.Table, list[BadRow]]:
    declared = set(spec.columns or {})
    records: list[dict[str, Any]] = []
    lines: list[int] = []
    bad_rows: list[BadRow] = []
    kinds: dict[str, tuple[str, int]] = {}
    with translate_errors(file.url, lambda: file.fs.open(file.path, "rb")) as stream:
        for number, raw in enumerate(stream, start=1):
            text = raw.decode("utf-8", errors="replace").strip()
            if not text:
                continue
            bad = _check_line(text, number, kinds, declared)
            if isinstance(bad, BadRow):
                bad_rows.append(bad)
                continue
            records.append(bad)
            lines.append(number)
    table = records_table(records, as_text=declared)
    if spec.columns and records:
        table, wrong = cast_declared(
            table, spec.columns, file=file.url, row_number=lambda index: lines[index]
        )
        bad_rows.extend(wrong)
    return table, bad_rows


def _check_line(
    text: str, number: int, kinds: dict[str, tuple[str, int]], declared: set[str]
) -> dict[str, Any] | BadRow:
    """The line's object, or why it is bad (broken JSON, or a value of another JSON type)."""
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        return BadRow(number, None, f"not valid JSON: {exc.msg} at character {exc.pos + 1}", text)
    if not isinstance(value, dict):
        return BadRow(number, None, f"a JSON {_kind(value)}, not an object", text)
    for name, item in value.items():
        kind = _kind(item)
        if name in declared or kind == "null":
            continue
        first_kind, first_line = kinds.setdefault(name, (kind, number))
        if kind != first_kind:
            reason = (
                f"a JSON {kind} where line {first_line} has a {first_kind}; declare the "
                "column's type under `columns` to convert its values"
            )
            return BadRow(number, name, reason, text)
    return value


def _kind(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    return "array" if isinstance(value, list) else "object"


def _streamed(file: InputFile, spec: SourceSpec, content_digest: str) -> Extract:
    try:
        reader = translate_errors(
            file.url, lambda: pajson.open_json(file.source(), **_options(spec))
        )
    except pa.ArrowInvalid as exc:
        raise _stream_error(exc, file) from exc
    return Extract(
        origin=file.url,
        content_digest=content_digest,
        schema=reader.schema,
        parts=_stream_parts(reader, file, spec),
        size_bytes=file.size,
    )


def _stream_parts(reader: Any, file: InputFile, spec: SourceSpec) -> Iterator[pa.Table]:
    try:
        yield from repartition(reader, spec.partition_rows)
    except pa.ArrowInvalid as exc:
        raise _stream_error(exc, file) from exc


def _stream_error(exc: pa.ArrowInvalid, file: InputFile) -> DataError:
    return DataError(
        f"cannot parse {file.url} as JSON Lines: {exc}; fix the line, declare the column's "
        "type under `columns`, or set `on_bad_rows: quarantine` (which names every bad line)",
        file=file.url,
    )
