"""The raw rows behind a split's subset: found again in the raw batches by row key.

A feature set records the raw batches it was computed from and its split records its rows
by key (``features.rows``). Combining those batches again (the same join) and keying them
the same way gives back each row as it was ingested — what a model's *own* fitted pipeline
needs to compute its features, whatever pipeline made this feature set.
"""

from __future__ import annotations

import pyarrow as pa

from gristmill.config.features import FeatureSetSpec
from gristmill.errors import ConfigError
from gristmill.features.labels import label_rows
from gristmill.features.prepare import combine
from gristmill.features.rows import keyed_input
from gristmill.features.stores import FeatureStores
from gristmill.segregation import Subset, positions_by_key
from gristmill.stores.features import FeatureSet
from gristmill.stores.models import Split
from gristmill.training.splits import read_membership


def raw_rows(
    feature_set: FeatureSet,
    manifest: Split,
    subset: Subset,
    spec: FeatureSetSpec | None,
    stores: FeatureStores,
) -> pa.Table:
    """The raw rows (every ingested column, the key too, and a derived label) of ``subset``
    of split ``manifest`` of ``feature_set``, in their ingestion order; ``spec`` is the
    feature set's section (its sources, join and roles). Rows a step added (gap filling)
    are not raw rows: the model's own pipeline adds them again.

    ``ConfigError`` without the section; ``NotFoundError`` for a batch no longer stored;
    ``DataError`` when the raw rows lack the split's key columns.
    """
    if spec is None:
        raise ConfigError(
            f"the spec has no section for feature set {feature_set.name!r}, so its raw rows "
            "cannot be combined again"
        )
    batches = [stores.metadata.batches.get_batch(b) for b in feature_set.inputs]
    by_source = {batch.source: batch for batch in batches}
    missing = [s for s in spec.from_ if s not in by_source]
    if missing:
        raise ConfigError(
            f"feature set {feature_set.feature_set_id} has no input batch of {missing[0]!r}; "
            "its raw rows cannot be combined again"
        )
    tables = {s: stores.raw.read(by_source[s].batch_id) for s in spec.from_}
    combined = combine(spec, tables, feature_set.name)
    table, _ = keyed_input(spec, combined, by_source[spec.from_[0]].batch_id)
    table = label_rows(spec, table, where=f"features.{feature_set.name}")
    parts = positions_by_key(table, read_membership(manifest, stores))
    return table.take(parts.get(subset, pa.array([], pa.int64())))
