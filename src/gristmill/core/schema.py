"""Batch schemas as plain data, their fingerprint, and the check that a source kept its schema."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import pyarrow as pa

from gristmill.core.ids import digest_json
from gristmill.errors import SchemaChangedError


def schema_fields(schema: pa.Schema) -> list[dict[str, Any]]:
    """``[{"name", "type", "nullable"}]`` for each field, in order (as ``RawBatch.schema``)."""
    return [
        {"name": field.name, "type": str(field.type), "nullable": field.nullable}
        for field in schema
    ]


def schema_fingerprint(fields: Sequence[dict[str, Any]]) -> str:
    """A digest of the column names and types (nullability is ignored)."""
    return digest_json([[field["name"], field["type"]] for field in fields])


@dataclass(frozen=True)
class SchemaChange:
    """How a schema differs from the previous one; empty when it does not."""

    added: list[str]
    removed: list[str]
    retyped: list[tuple[str, str, str]]

    def __bool__(self) -> bool:
        return bool(self.added or self.removed or self.retyped)

    def describe(self) -> str:
        """``added ['x']; removed ['y']; retyped age: int64 -> string``."""
        parts = []
        if self.added:
            parts.append(f"added {self.added}")
        if self.removed:
            parts.append(f"removed {self.removed}")
        parts.extend(f"retyped {name}: {old} -> {new}" for name, old, new in self.retyped)
        return "; ".join(parts)


def schema_change(
    previous: Sequence[dict[str, Any]], current: Sequence[dict[str, Any]]
) -> SchemaChange:
    """The columns added, removed and retyped from ``previous`` to ``current``."""
    before = {field["name"]: field["type"] for field in previous}
    after = {field["name"]: field["type"] for field in current}
    return SchemaChange(
        added=[name for name in after if name not in before],
        removed=[name for name in before if name not in after],
        retyped=[
            (name, before[name], after[name])
            for name in after
            if name in before and before[name] != after[name]
        ],
    )


def check_schema(
    source: str,
    previous: Sequence[dict[str, Any]] | None,
    current: Sequence[dict[str, Any]],
    *,
    file: str,
    previous_batch: str = "",
) -> None:
    """Raise ``SchemaChangedError`` if ``current`` differs from the ``previous`` batch's schema."""
    if previous is None:
        return
    change = schema_change(previous, current)
    if not change:
        return
    column = (change.added or change.removed or [name for name, _, _ in change.retyped])[0]
    raise SchemaChangedError(
        f"the schema of source {source!r} changed in {file} since batch {previous_batch}: "
        f"{change.describe()}; fix the input, declare the column types under `columns`, or "
        "set `on_schema_change: allow` on the source to accept the new schema",
        file=file,
        column=column,
    )
