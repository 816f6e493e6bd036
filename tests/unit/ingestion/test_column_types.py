"""Declared types: the cast finds exactly the values that fail; schemas compare by column."""

from __future__ import annotations

import pyarrow as pa
import pytest
from hypothesis import given
from hypothesis import strategies as st

from gristmill.core.schema import check_schema, schema_change, schema_fields
from gristmill.errors import SchemaChangedError
from gristmill.ingestion.bad_rows import BadRow, bad_rows_error, quarantine_table
from gristmill.ingestion.column_types import cast_declared
from gristmill.ingestion.extract import repartition

value = st.one_of(st.integers(-(10**6), 10**6).map(str), st.sampled_from(["x", "1.5", "", "7a"]))


@given(st.lists(value, max_size=300), st.integers(1, 50))
def test_exactly_the_values_that_do_not_cast_are_bad(values: list[str], chunk: int) -> None:
    chunks = [values[i : i + chunk] for i in range(0, len(values), chunk)] or [[]]
    table = pa.table({"n": pa.chunked_array(chunks, pa.string())})
    good, bad = cast_declared(
        table, {"n": "int64"}, file="f", row_number=lambda i: i + 1, text_nulls=True
    )
    expected_bad = [i + 1 for i, v in enumerate(values) if v not in ("",) and not _is_int(v)]
    assert [b.row for b in bad] == expected_bad
    assert good.column("n").to_pylist() == [
        None if v == "" else int(v) for v in values if v == "" or _is_int(v)
    ]


def _is_int(text: str) -> bool:
    try:
        int(text)
    except ValueError:
        return False
    return True


def test_repartition_regroups_record_batches() -> None:
    batches = [pa.record_batch({"a": list(range(n))}) for n in (3, 0, 7, 1, 5)]
    assert [t.num_rows for t in repartition(batches, 4)] == [4, 4, 4, 4]
    assert [t.num_rows for t in repartition(batches[:1], 4)] == [3]


def test_schema_change_lists_added_removed_and_retyped() -> None:
    before = schema_fields(pa.schema([("a", pa.int64()), ("b", pa.string())]))
    after = schema_fields(pa.schema([("a", pa.float64()), ("c", pa.string())]))
    change = schema_change(before, after)
    assert change.describe() == "added ['c']; removed ['b']; retyped a: int64 -> double"
    assert not schema_change(before, before)
    with pytest.raises(SchemaChangedError, match="since batch B1: added") as caught:
        check_schema("s", before, after, file="f.csv", previous_batch="B1")
    assert (caught.value.file, caught.value.column) == ("f.csv", "c")
    check_schema("s", None, after, file="f.csv")


def test_the_bad_rows_error_names_the_first_and_counts_all() -> None:
    bad = [BadRow(9, "x", "'a' is not a valid int64"), BadRow(4, None, "expected 2 fields", "1")]
    error = bad_rows_error(bad, "f.csv")
    assert (error.file, error.row, error.column) == ("f.csv", 4, None)
    assert str(error).startswith("bad row in f.csv, row 4: expected 2 fields; the row reads '1'")
    assert "(2 bad rows in all)" in str(error)
    table = quarantine_table(bad)
    assert table is not None and table.column("row").to_pylist() == [4, 9]
    assert quarantine_table([]) is None
