"""Row keys: entity + timestamp when they name every row once, else a row id given on read."""

from __future__ import annotations

from datetime import UTC, datetime

import pandas as pd
import pyarrow as pa

from gristmill.config.features import FeatureSetSpec
from gristmill.features.pipeline import FeaturePipeline
from gristmill.features.rows import ROW_ID, key_columns, keyed, transform_keyed, without_row_id

DAY = datetime(2026, 1, 1, tzinfo=UTC)


def test_entity_and_timestamp_are_the_key_when_they_name_every_row_once() -> None:
    table = pa.table(
        {"shop": ["a", "a", "b"], "at": [DAY, DAY.replace(day=2), DAY], "x": [1, 2, 3]}
    )
    assert key_columns(table, "shop", "at") == ["shop", "at"]
    same, keys = keyed(table, "shop", "at", "01B")
    assert keys == ["shop", "at"] and same.equals(table)


def test_a_row_id_names_rows_when_entity_and_time_do_not() -> None:
    twice = pa.table({"shop": ["a", "a"], "at": [DAY, DAY], "x": [1, 2]})
    gap = pa.table({"shop": ["a", None], "at": [DAY, DAY], "x": [1, 2]})
    for table, entity, timestamp in (
        (twice, "shop", "at"),
        (gap, "shop", "at"),
        (twice, "shop", None),
    ):
        with_ids, keys = keyed(table, entity, timestamp, "01BATCH")
        assert keys == [ROW_ID]
        assert with_ids.column_names[0] == ROW_ID
        assert with_ids.column(ROW_ID).to_pylist() == ["01BATCH:0", "01BATCH:1"]
        assert without_row_id(with_ids).equals(table)
        assert keyed(with_ids, entity, timestamp, "other")[0].equals(with_ids)  # given once


def test_the_row_id_passes_through_the_steps_and_is_never_a_feature() -> None:
    table, _ = keyed(pa.table({"x": [1.0, None, 3.0, 10.0], "y": [0, 1, 0, 1]}), None, None, "b")
    spec = FeatureSetSpec.model_validate(
        {
            "from": ["s"],
            "label": "y",
            "steps": [{"impute": {"columns": ["x"]}}, {"filter": {"expr": "x < 5"}}],
        }
    )
    fitted = FeaturePipeline.from_spec(spec).fit_table(without_row_id(table))
    assert ROW_ID not in fitted.inputs and ROW_ID not in fitted.feature_names
    out = transform_keyed(fitted, table)
    assert out.column(ROW_ID).to_pylist() == ["b:0", "b:1", "b:2"]  # b:3 was filtered out
    assert pa.types.is_string(out.schema.field(ROW_ID).type)
    assert (
        out.drop_columns([ROW_ID])
        .to_pandas()
        .equals(fitted.transform(pd.DataFrame({"x": [1.0, None, 3.0, 10.0], "y": [0, 1, 0, 1]})))
    )
