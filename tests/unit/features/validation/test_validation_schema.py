"""The inferred schema and its comparison with a previous one."""

from __future__ import annotations

from collections.abc import Callable

import pyarrow as pa

from gristmill.features.validation import (
    ColumnSchema,
    Schema,
    SchemaChange,
    compare_schemas,
    infer_schema,
)


def test_penguins_schema_has_types_kinds_and_observed_nullability(penguins: pa.Table) -> None:
    schema = infer_schema(penguins)
    by_name = {column.name: column for column in schema.columns}
    assert [c.name for c in schema.columns] == penguins.column_names
    assert by_name["species"] == ColumnSchema("species", "large_string", False, "categorical")
    assert by_name["bill_length_mm"] == ColumnSchema("bill_length_mm", "double", True, "numeric")
    assert by_name["sex"].nullable
    assert by_name["year"] == ColumnSchema("year", "int64", False, "numeric")


def test_every_kind_is_inferred(customers: Callable[..., pa.Table]) -> None:
    table = customers(200).append_column("blob", pa.array([b"x"] * 200))
    kinds = {column.name: column.kind for column in infer_schema(table).columns}
    assert kinds == {
        "age": "numeric",
        "income": "numeric",
        "plan": "categorical",
        "active": "boolean",
        "signup": "temporal",
        "name": "text",
        "visits": "numeric",
        "blob": "other",
    }


def test_compare_finds_type_changes_removed_and_added_columns(
    customers: Callable[..., pa.Table],
) -> None:
    before = infer_schema(customers(50))
    table = customers(50).drop_columns(["name"])
    table = table.set_column(0, "age", table.column("age").cast(pa.string()))
    after = infer_schema(table.append_column("score", pa.array([1.0] * 50)))
    assert compare_schemas(before, after) == [
        SchemaChange("age", "type_changed", "double", "string"),
        SchemaChange("name", "removed", "string", None),
        SchemaChange("score", "added", None, "double"),
    ]
    assert compare_schemas(before, before) == []


def test_kind_and_nullability_are_not_schema_changes(customers: Callable[..., pa.Table]) -> None:
    # A string column's kind follows its data; only Arrow types are compared.
    few = infer_schema(pa.table({"x": ["a", "b"] * 50, "y": [1.0] * 100}))
    many = infer_schema(pa.table({"x": [str(i) for i in range(100)], "y": [None, 1.0] * 50}))
    assert few.columns[0].kind != many.columns[0].kind
    assert compare_schemas(few, many) == []


def test_schema_round_trips_through_dicts(penguins: pa.Table) -> None:
    schema = infer_schema(penguins)
    assert Schema.from_dicts(schema.to_dict()) == schema
    stored = [{"name": "age", "type": "int64", "nullable": True}]
    assert Schema.from_dicts(stored).columns == [ColumnSchema("age", "int64", True, "other")]
