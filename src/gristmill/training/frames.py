"""A feature set's table as what learners take: the feature columns and the label."""

from __future__ import annotations

import pandas as pd
import pyarrow as pa

from gristmill.features.rows import ROW_ID
from gristmill.stores.features import FeatureSet


def training_frames(
    table: pa.Table, feature_set: FeatureSet
) -> tuple[pd.DataFrame, pd.Series | None]:
    """Features (every column but entity, timestamp, label and row id) and the label."""
    roles = {feature_set.entity, feature_set.timestamp, feature_set.label, ROW_ID} - {None}
    frame = table.to_pandas()
    label = frame[feature_set.label] if feature_set.label else None
    return frame[[c for c in frame.columns if c not in roles]], label
