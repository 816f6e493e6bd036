"""The parity check: a compiled servable must answer held-out rows as the native scorer does.

The rows are the raw rows of the test subset of the candidate's split, found again in the
raw batches by row key (``training.raw_rows``, through the spec its run recorded): rows no
fitted state has seen. When they cannot be found (the spec or a batch is gone), a sample of
the feature set's first raw batch stands in, and ``Parity.rows_from`` says so. At most
``PARITY_ROWS`` rows are used, spread over the subset.

Tolerances: a graph whose learner takes float32 (tree ensembles, as scikit-learn computes
them) must stay within ``1e-4``; a graph of doubles within ``1e-7``. Probabilities are
compared absolutely, numbers (regression, forecasts) relative to their size above 1
(``|Δ| ≤ tolerance * max(1, |native|)``); classes and cluster ids must be equal.
"""

from __future__ import annotations

import logging
import re

import numpy as np
import pandas as pd
import pyarrow as pa

from gristmill.config.features import FeatureSetSpec
from gristmill.errors import DataError, GristmillError
from gristmill.features.rows import without_row_id
from gristmill.features.stores import FeatureStores
from gristmill.servables.port import Parity, Predictions
from gristmill.stores.models import Candidate
from gristmill.training.raw_rows import raw_rows

logger = logging.getLogger(__name__)

PARITY_ROWS = 1000
FLOAT32_TOLERANCE = 1e-4
DOUBLE_TOLERANCE = 1e-7
RULE = "classes equal; probabilities |Δ| ≤ tolerance; numbers |Δ| ≤ tolerance * max(1, |native|)"


def held_out_rows(
    stores: FeatureStores,
    candidate: Candidate,
    section: FeatureSetSpec | None,
    *,
    keep_label: bool = False,
) -> tuple[pd.DataFrame, str]:
    """Raw rows to check a compiled servable on, and where they came from; without their
    label unless ``keep_label`` (a pipeline whose series steps read the label's past)."""
    feature_set = stores.metadata.feature_sets.get_feature_set(candidate.feature_set_id)
    try:
        split = stores.metadata.splits.get_split(candidate.split_id)
        table = raw_rows(feature_set, split, "test", section, stores)
        where = f"test rows of split {split.split_id}"
        if table.num_rows == 0:
            raise DataError("the split has no test rows")
    except GristmillError as exc:
        logger.info("test rows of %s not found (%s); a sample stands in", candidate.name, exc)
        if not feature_set.inputs:
            raise DataError(f"feature set {feature_set.feature_set_id} has no raw input") from exc
        table = stores.raw.read(feature_set.inputs[0])
        where = f"a sample of raw batch {feature_set.inputs[0]} (test rows not found: {exc})"
    table = _spread(without_row_id(table), PARITY_ROWS)
    frame = table.to_pandas()
    if feature_set.label and feature_set.label in frame.columns and not keep_label:
        frame = frame.drop(columns=[feature_set.label])
    if len(frame) == 0:
        raise DataError("no rows to check the compiled servable on")
    return frame, where


def _spread(table: pa.Table, limit: int) -> pa.Table:
    if table.num_rows <= limit:
        return table
    positions = np.linspace(0, table.num_rows - 1, limit).round().astype(np.int64)
    return table.take(pa.array(np.unique(positions)))


def compare(
    native: Predictions, compiled: Predictions, *, task: str, tolerance: float, rows_from: str
) -> Parity:
    """How ``compiled`` agrees with ``native`` on the same rows (see the module docstring)."""
    rows = len(native.values)
    classes_equal: bool | None = None
    diff: float | None = None
    passed = len(compiled.values) == rows
    if task in ("classification", "clustering"):
        classes_equal = passed and bool(
            np.array_equal(np.asarray(native.values, dtype=object), compiled.values.astype(object))
        )
        passed = classes_equal
        if native.probabilities is not None and compiled.probabilities is not None:
            delta = np.abs(native.probabilities - compiled.probabilities)
            diff = float(np.nanmax(delta)) if delta.size else 0.0
            passed = passed and native.probabilities.shape == compiled.probabilities.shape
            passed = passed and diff <= tolerance
    elif passed:
        want = np.asarray(native.values, dtype=np.float64)
        got = np.asarray(compiled.values, dtype=np.float64)
        delta = np.abs(want - got)
        diff = float(delta.max()) if delta.size else 0.0
        scaled = delta / np.maximum(1.0, np.abs(want))
        same_gaps = bool(np.array_equal(np.isnan(want), np.isnan(got)))
        passed = same_gaps and bool(np.all(np.nan_to_num(scaled) <= tolerance))
    return Parity(rows, classes_equal, diff, tolerance, bool(passed), rows_from, RULE)


OLD_BLANKED = re.compile(r" and (\d+) of them with one column blanked$")
"""How servables compiled before ``Parity.blanked`` said how many rows were blanked copies."""


def describe(parity: Parity) -> str:
    """One line: rows (held-out ones, and blanked copies), classes, largest difference and
    tolerance, verdict."""
    rows_from, blanked = parity.rows_from, parity.blanked
    old = OLD_BLANKED.search(rows_from)
    if old is not None and not blanked:
        rows_from, blanked = rows_from[: old.start()], int(old.group(1))
    held = f"{parity.rows - blanked} {rows_from}"
    if blanked:
        held += f" plus {blanked} blanked cop{'y' if blanked == 1 else 'ies'} of one of them"
        held += " (one column missing in each)"
    parts = [held]
    if parity.classes_equal is not None:
        parts.append("classes equal" if parity.classes_equal else "classes DIFFER")
    if parity.max_abs_diff is not None:
        parts.append(f"max |Δ| {parity.max_abs_diff:.3g} (tolerance {parity.tolerance:g})")
    return ", ".join(parts) + ("" if parity.passed else " — FAILED")
