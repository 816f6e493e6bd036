"""A split's membership by row key: which subset each named row is in, and the subsets back.

Positions name a row only in one table; a key (the entity and timestamp, or a row id given
when the rows were read) names it in the raw batches, in the feature set made from them and
in every later stage. ``keyed_membership`` records a split by key; ``positions_by_key``
finds the rows of each subset in any table that carries the key columns — a feature set
read back from the offline store, or its raw rows combined again.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from gristmill.errors import DataError
from gristmill.segregation.result import SUBSETS, Rows, Subset

SUBSET = "subset"
_POSITION = "__position"


def keyed_membership(table: pa.Table, rows: Mapping[Subset, Rows], keys: Sequence[str]) -> pa.Table:
    """Which subset each row of ``table`` is in (``rows``: each subset's positions in it), as
    the key columns of the row and its ``subset`` (dictionary-encoded), in ``table``'s order.
    A row in no subset is left out."""
    missing = [k for k in keys if k not in table.column_names]
    if missing:
        raise DataError(f"the split's table has no key column {missing[0]!r}", column=missing[0])
    codes = np.full(table.num_rows, -1, np.int8)
    for name, positions in rows.items():
        codes[positions] = SUBSETS.index(name)
    kept = np.flatnonzero(codes >= 0)
    subset = pa.DictionaryArray.from_arrays(pa.array(codes[kept]), pa.array(SUBSETS))
    return table.select(list(keys)).take(pa.array(kept, pa.int64())).append_column(SUBSET, subset)


def membership_keys(membership: pa.Table) -> list[str]:
    """The key columns a keyed membership names its rows by."""
    return [c for c in membership.column_names if c != SUBSET]


def positions_by_key(table: pa.Table, membership: pa.Table) -> dict[Subset, Rows]:
    """Each subset's rows in ``table`` (ascending positions), found by the membership's key.

    A row of ``table`` the membership does not name is in no subset; a named row that
    ``table`` lacks is simply not found (a row a ``filter`` step removed). ``DataError``
    when ``table`` lacks a key column.
    """
    keys = membership_keys(membership)
    missing = [k for k in keys if k not in table.column_names]
    if missing:
        raise DataError(
            f"the rows have no key column {missing[0]!r}, so the split's rows cannot be "
            "found in them",
            column=missing[0],
        )
    left = table.select(keys).append_column(_POSITION, pa.array(range(table.num_rows), pa.int64()))
    # the same key may come back as another physical type (string / large_string after a
    # round trip through pandas, a timestamp's unit): compare values in the rows' types
    right = pa.table(
        {k: pc.cast(membership.column(k), table.schema.field(k).type) for k in keys}
    ).append_column(SUBSET, pc.cast(membership.column(SUBSET), pa.string()))
    joined = left.join(right, keys=keys, join_type="inner")
    positions = joined.column(_POSITION).to_numpy()
    names = joined.column(SUBSET).to_numpy(zero_copy_only=False)
    parts: dict[Subset, Rows] = {}
    for name in SUBSETS:
        rows = np.sort(positions[names == name]).astype(np.int64)
        if len(rows):
            parts[name] = rows
    return parts
