"""Row identity: the key that names one row of a feature set from its raw input to its score.

A split, an evaluation, the gate and (later) a score or a feedback record must name the
*same* row, across stages and processes, whatever was filtered or reordered on the way.
Positions cannot do that; a key can. The key of a feature set's rows is

* its ``entity`` and ``timestamp`` columns, when the spec names both and every combined
  input row has a distinct, non-missing pair of them;
* otherwise a row id, the column ``_row_id``: ``<first input batch id>:<row number>`` in the
  combined input (after the join, before any step), given when the rows are read.

A pipeline that adds rows (``fill_gaps`` with ``freq``) is keyed by row id, whatever its
roles: the rows it adds are named ``<first input batch id>:+<n>``, numbered in the order
the feature set holds them.

Both are computed from the raw batches alone, so the rows a feature set's split names can be
found again in those batches (``keyed``) — by the gate, which scores a champion through its
own fitted pipeline on the very raw rows of this test subset. The row id is carried through
the pipeline as a pass-through column: the steps never see it, it is never a feature.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pyarrow as pa
import pyarrow.compute as pc

from gristmill.config.features import FeatureSetSpec

if TYPE_CHECKING:  # the row key alone (a score job reads it) needs no scikit-learn nor pandas
    from gristmill.features.pipeline import FittedFeaturePipeline

ROW_ID = "_row_id"


def key_columns(table: pa.Table, entity: str | None, timestamp: str | None) -> list[str]:
    """The columns that name each row of ``table`` (see the module docstring)."""
    if ROW_ID in table.column_names:
        return [ROW_ID]
    if entity and timestamp and {entity, timestamp} <= set(table.column_names):
        pair = table.select([entity, timestamp])
        complete = all(pair.column(c).null_count == 0 for c in (entity, timestamp))
        if complete and pair.group_by([entity, timestamp]).aggregate([]).num_rows == len(pair):
            return [entity, timestamp]
    return [ROW_ID]


def keyed(
    table: pa.Table, entity: str | None, timestamp: str | None, first_batch: str
) -> tuple[pa.Table, list[str]]:
    """``table`` (the combined raw input) with its key: as it is when entity and timestamp
    name every row, else with a ``_row_id`` column first. Returns the table and the key."""
    keys = key_columns(table, entity, timestamp)
    if keys != [ROW_ID] or ROW_ID in table.column_names:
        return table, keys
    numbers = pc.cast(pa.array(range(table.num_rows), pa.int64()), pa.string())
    ids = pc.binary_join_element_wise(pa.scalar(f"{first_batch}:"), numbers, "")
    return table.add_column(0, ROW_ID, ids), keys


def keyed_input(
    spec: FeatureSetSpec, table: pa.Table, first_batch: str
) -> tuple[pa.Table, list[str]]:
    """``keyed`` for the combined input of ``spec``'s feature set: by row id when its
    pipeline adds rows (they have no entity and time of their own to be named by)."""
    entity = None if spec.adds_rows() else spec.entity
    return keyed(table, entity, spec.timestamp, first_batch)


def name_added_rows(table: pa.Table) -> pa.Table:
    """``table`` with a row id for each row a step added (one whose ``_row_id`` is null):
    ``<prefix>:+<n>``, the prefix that of the other ids (the first input batch)."""
    if ROW_ID not in table.column_names or table.column(ROW_ID).null_count == 0:
        return table
    ids = table.column(ROW_ID).to_pylist()
    known = next((i for i in ids if i is not None), None)
    prefix = known.rsplit(":", 1)[0] if known else "added"
    numbers = iter(range(len(ids)))
    named = [i if i is not None else f"{prefix}:+{next(numbers)}" for i in ids]
    return table.set_column(table.schema.get_field_index(ROW_ID), ROW_ID, pa.array(named))


def without_row_id(table: pa.Table) -> pa.Table:
    """``table`` without its row id column (what the steps and the online store see)."""
    return table.drop_columns([ROW_ID]) if ROW_ID in table.column_names else table


def transform_keyed(
    fitted: FittedFeaturePipeline, table: pa.Table, gaps: dict[str, int] | None = None
) -> pa.Table:
    """``fitted.transform_table`` that keeps each surviving row's ``_row_id`` (first column),
    and the rows a step added (their id null: ``name_added_rows`` names them); ``gaps`` as
    ``FittedFeaturePipeline.transform`` takes it."""
    return keyed_table(keyed_frame(fitted, table, gaps))


def keyed_table(frame: Any) -> pa.Table:
    """A frame from ``keyed_frame`` as an Arrow table, its row ids as ``string``."""
    table = pa.Table.from_pandas(frame, preserve_index=False)
    if ROW_ID not in table.column_names:
        return table
    ids = pc.cast(table.column(ROW_ID), pa.string())
    return table.set_column(table.schema.get_field_index(ROW_ID), ROW_ID, ids)


def keyed_frame(
    fitted: FittedFeaturePipeline, table: pa.Table, gaps: dict[str, int] | None = None
) -> Any:
    """``transform_keyed`` as a pandas DataFrame (on a fresh index)."""
    frame = table.to_pandas()
    ids = frame.pop(ROW_ID) if ROW_ID in frame.columns else None
    result = fitted.transform(frame, keep_added=True, gaps=gaps)
    if ids is not None:
        named = ids.reindex(result.index).astype(object)
        result.insert(0, ROW_ID, named.where(named.notna(), None).to_numpy())
    return result.reset_index(drop=True)
