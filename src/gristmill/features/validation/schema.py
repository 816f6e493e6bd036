"""The schema inferred from a table (the role of TFX SchemaGen) and how two schemas differ.

Each column gets its Arrow type, whether it held missing values, and a *kind* that says how
validation treats it: ``numeric``, ``categorical`` (strings with few distinct values),
``boolean``, ``temporal``, ``text`` (strings with many distinct values: names, ids) or
``other`` (binary, nested, all-null). The kind of a string column depends on its data, so
only Arrow types are compared between schemas.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any, Literal

import pyarrow as pa

from gristmill.features.validation.profiles import ColumnProfile, Kind, profile_table

ChangeKind = Literal["type_changed", "added", "removed"]


@dataclass(frozen=True)
class ColumnSchema:
    """``nullable`` is observed: the column held at least one missing value."""

    name: str
    type: str
    nullable: bool
    kind: Kind

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Schema:
    """The inferred schema of one table, columns in table order."""

    columns: list[ColumnSchema]

    @classmethod
    def from_profiles(cls, profiles: Mapping[str, ColumnProfile]) -> Schema:
        return cls(
            [ColumnSchema(p.name, str(p.type), p.missing > 0, p.kind) for p in profiles.values()]
        )

    @classmethod
    def from_dicts(cls, columns: Sequence[Mapping[str, Any]]) -> Schema:
        """A schema stored as dicts (``to_dict``'s or a raw batch's); kind defaults to ``other``."""
        return cls(
            [
                ColumnSchema(
                    str(c["name"]),
                    str(c["type"]),
                    bool(c.get("nullable", True)),
                    c.get("kind", "other"),
                )
                for c in columns
            ]
        )

    def to_dict(self) -> list[dict[str, Any]]:
        return [column.to_dict() for column in self.columns]

    @property
    def types(self) -> dict[str, str]:
        return {column.name: column.type for column in self.columns}


@dataclass(frozen=True)
class SchemaChange:
    """One difference from a previous schema; ``before``/``after`` are Arrow type names."""

    column: str
    change: ChangeKind
    before: str | None
    after: str | None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def infer_schema(table: pa.Table) -> Schema:
    """The inferred schema of ``table`` (one profiling pass over its columns)."""
    return Schema.from_profiles(profile_table(table))


def compare_schemas(previous: Schema, current: Schema) -> list[SchemaChange]:
    """What changed from ``previous`` to ``current``: types changed and columns removed, in
    ``previous``'s order, then columns added, in ``current``'s order."""
    before, after = previous.types, current.types
    changes = [
        SchemaChange(name, "removed", type_, None)
        if name not in after
        else SchemaChange(name, "type_changed", type_, after[name])
        for name, type_ in before.items()
        if after.get(name) != type_
    ]
    changes += [SchemaChange(n, "added", None, t) for n, t in after.items() if n not in before]
    return changes
