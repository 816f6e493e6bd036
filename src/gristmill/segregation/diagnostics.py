"""Warnings that travel with a split: empty or small subsets, class imbalance, shift.

* **empty**: a subset the split asked for has no rows (a ratio of a small table rounds to 0).
* **small**: a subset has fewer than ``Thresholds.min_rows`` rows, or no row of a class
  the table has.
* **imbalance**: a class's share in validation or test differs from its share in train by
  more than ``Thresholds.imbalance`` (in points of share: 0.10 is 10 points).
* **shift**: a column is distributed differently in validation or test than in train —
  the tests monitoring uses (``features.validation.drift``): PSI on the train deciles for
  numbers, PSI on the categories for categories, each with a chi-square test on the same
  counts. A column shifts when **both** say so: PSI alone is biased upwards on small
  samples (ten bins of a 45-row subset differ by chance), a test alone flags differences
  too small to matter on large ones. Free text (ids) and times are not compared, nor the
  columns that are not features: the split's own column (``time``, ``group``) and the
  columns ``diagnose`` is told to leave out (a feature set's entity and timestamp — a
  row id rising with time always "shifts" under a time split, and says nothing).

The label is checked for imbalance when it holds classes (not floating point, and at most
``Thresholds.max_classes`` distinct integers); a numeric label is checked for shift instead.

A ``sequential`` or ``time`` split of a series that trends (CO2, prices, GDP) always puts
the later, higher (or lower) values in test: that shift is what the split is for, not a
warning. A numeric column shifts *by its trend* when its values follow the time order
within train (Spearman's rho between row order and value at least ``Thresholds.trend`` in
size) and the later subset lies beyond train in the trend's direction (its median above
train's for a rising trend). Such shifts are not warned about; one **note** (kind
``trend``) names the columns once. A level shift at the split's boundary (train flat, test
higher) is no trend, and is still warned about.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc
from scipy import stats

from gristmill.features.validation.drift import (
    P_VALUE_THRESHOLD,
    PSI_THRESHOLD,
    categorical_drift,
    numeric_drift,
)
from gristmill.features.validation.profiles import ColumnProfile, profile_column
from gristmill.segregation.result import Rows, SplitWarning, Subset
from gristmill.segregation.strategies import Plan, class_codes

Classes = tuple[npt.NDArray[np.int64], list[Any]]


@dataclass(frozen=True)
class Thresholds:
    """When a split warns; the defaults suit most tables."""

    imbalance: float = 0.10
    min_rows: int = 30
    psi: float = PSI_THRESHOLD
    p_value: float = P_VALUE_THRESHOLD
    max_classes: int = 50
    trend: float = 0.5
    """Spearman's rho (in size) between row order and value within train that makes a
    column's shift under a sequential or time split its trend (noted, not warned)."""


TEMPORAL = frozenset({"sequential", "time"})
"""Strategies whose train rows come before their test rows in time."""


def diagnose(
    table: pa.Table,
    assignment: Mapping[Subset, Rows],
    subsets: Mapping[Subset, pa.Table],
    plan: Plan,
    thresholds: Thresholds,
    *,
    not_features: Iterable[str | None] = (),
) -> list[SplitWarning]:
    """Every warning about one split, in a stable order: per subset, by kind, by column.

    ``not_features`` names columns never tested for shift (the entity and timestamp of the
    feature set); ``None`` and names the table lacks are ignored.
    """
    classes = label_classes(table, plan.label, thresholds)
    warnings = [*_sizes(table, assignment, plan, thresholds)]
    if classes is not None:
        warnings += _class_warnings(assignment, classes, str(plan.label), thresholds)
    skipped: set[str | None] = set(not_features)
    if plan.strategy in ("time", "group"):
        skipped.add(plan.column)
    if classes is not None:
        skipped.add(plan.label)
    shifts = list(_shifts(subsets, skipped, thresholds))
    if plan.strategy in TEMPORAL:
        shifts, note = _trends(shifts, subsets, plan.strategy, thresholds)
        warnings += shifts + ([note] if note else [])
    else:
        warnings += shifts
    return warnings


def label_classes(table: pa.Table, label: str | None, thresholds: Thresholds) -> Classes | None:
    """The label's class codes if it holds classes, else ``None``."""
    if label is None:
        return None
    column = table.column(label)
    kind = column.type.value_type if pa.types.is_dictionary(column.type) else column.type
    if pa.types.is_floating(kind) or pa.types.is_decimal(kind):
        return None
    if pa.types.is_integer(kind) and pc.count_distinct(column).as_py() > thresholds.max_classes:
        return None
    return class_codes(column)


def _sizes(
    table: pa.Table, assignment: Mapping[Subset, Rows], plan: Plan, thresholds: Thresholds
) -> Iterator[SplitWarning]:
    rows = table.num_rows
    for subset, chosen in assignment.items():
        if chosen.size == 0:
            numbers = {"rows": 0.0, "table_rows": float(rows)}
            yield SplitWarning("empty", subset, _empty_message(subset, rows, plan), numbers)
        elif chosen.size < thresholds.min_rows:
            yield SplitWarning(
                "small",
                subset,
                f"the {subset} subset has {chosen.size} rows, fewer than {thresholds.min_rows}: "
                "what is measured on it is noisy",
                {"rows": float(chosen.size), "minimum": float(thresholds.min_rows)},
            )


def _empty_message(subset: Subset, rows: int, plan: Plan) -> str:
    units = "groups" if plan.strategy == "group" else "rows"
    if plan.strategy == "custom":
        return f"the custom split put none of the {rows} rows in {subset}"
    if subset == "train":
        reason = "test_size and validation_size leave none"
    else:
        size = plan.test_size if subset == "test" else plan.validation_size
        reason = f"{subset}_size {size} rounds to 0 {units}"
    return (
        f"the {subset} subset is empty: of the table's {rows} rows, {reason}; "
        f"change {subset if subset != 'train' else 'test'}_size or split more data"
    )


def _class_warnings(
    assignment: Mapping[Subset, Rows], classes: Classes, label: str, thresholds: Thresholds
) -> Iterator[SplitWarning]:
    codes, names = classes
    counts = {
        subset: np.bincount(codes[rows], minlength=len(names))
        for subset, rows in assignment.items()
    }
    present = np.bincount(codes, minlength=len(names)) > 0
    for subset, count in counts.items():
        absent = np.flatnonzero(present & (count == 0))
        if count.sum() and absent.size:
            shown = ", ".join(repr(names[code]) for code in absent[:5])
            yield SplitWarning(
                "small",
                subset,
                f"the {subset} subset has no row of class {shown} of label {label!r}",
                {"absent_classes": float(absent.size), "classes": float(present.sum())},
                label,
            )
    train = counts.get("train")
    if train is None or not train.sum():
        return
    for subset, count in counts.items():
        if subset != "train" and count.sum():
            warning = _imbalance(subset, train, count, names, label, thresholds)
            if warning is not None:
                yield warning


def _imbalance(
    subset: Subset,
    train: npt.NDArray[np.int64],
    other: npt.NDArray[np.int64],
    names: list[Any],
    label: str,
    thresholds: Thresholds,
) -> SplitWarning | None:
    train_share, other_share = train / train.sum(), other / other.sum()
    difference = np.abs(other_share - train_share)
    worst = int(np.argmax(difference))
    if difference[worst] <= thresholds.imbalance:
        return None
    return SplitWarning(
        "imbalance",
        subset,
        f"class {names[worst]!r} of label {label!r} is {train_share[worst]:.1%} of train but "
        f"{other_share[worst]:.1%} of {subset}, {difference[worst] * 100:.1f} points apart "
        f"(more than {thresholds.imbalance * 100:g})",
        {
            "train_share": float(train_share[worst]),
            "subset_share": float(other_share[worst]),
            "difference": float(difference[worst]),
            "threshold": thresholds.imbalance,
        },
        label,
    )


def _shifts(
    subsets: Mapping[Subset, pa.Table], skipped: set[str | None], thresholds: Thresholds
) -> Iterator[SplitWarning]:
    train = subsets["train"]
    if train.num_rows == 0:
        return
    reference = {
        name: profile_column(name, train.column(name))
        for name in train.column_names
        if name not in skipped
    }
    for subset, table in subsets.items():
        if subset == "train" or table.num_rows == 0:
            continue
        for name, profile in reference.items():
            warning = _shift(subset, profile, profile_column(name, table.column(name)), thresholds)
            if warning is not None:
                yield warning


def _shift(
    subset: Subset, train: ColumnProfile, other: ColumnProfile, thresholds: Thresholds
) -> SplitWarning | None:
    if train.values is not None and other.values is not None:  # both numeric
        reference, current = train.values, other.values
        size = numeric_drift(reference, current, threshold=thresholds.psi, assume_sorted=True)
        test = numeric_drift(
            reference, current, method="chi2", threshold=thresholds.p_value, assume_sorted=True
        )
    elif train.kind == other.kind and train.kind in ("categorical", "boolean"):
        counts = (train.counts or {}, other.counts or {})
        size = categorical_drift(*counts, method="psi", threshold=thresholds.psi)
        test = categorical_drift(*counts, threshold=thresholds.p_value)
    else:
        return None
    if not (size.drifted and test.drifted) or test.p_value is None:
        return None
    return SplitWarning(
        "shift",
        subset,
        f"column {train.name!r} is distributed differently in {subset} than in train "
        f"(PSI {size.statistic:.3g} > {size.threshold:g}, chi-square p-value "
        f"{test.p_value:.3g} < {test.threshold:g})",
        {
            "psi": size.statistic,
            "psi_threshold": size.threshold,
            "chi2": test.statistic,
            "p_value": test.p_value,
            "p_value_threshold": test.threshold,
        },
        train.name,
    )


def _trends(
    shifts: list[SplitWarning],
    subsets: Mapping[Subset, pa.Table],
    strategy: str,
    thresholds: Thresholds,
) -> tuple[list[SplitWarning], SplitWarning | None]:
    """The shifts that are no trend, and one note naming the columns whose shift is."""
    kept: list[SplitWarning] = []
    trending: dict[str, float] = {}
    for warning in shifts:
        column = warning.column
        rho = None if column is None else _trend(subsets, warning.subset, column, thresholds)
        if rho is None:
            kept.append(warning)
        else:
            trending[str(column)] = rho
    if not trending:
        return kept, None
    names = ", ".join(repr(c) for c in trending)
    figures = ", ".join(f"{c} {rho:+.2f}" for c, rho in trending.items())
    later = "test" if "validation" not in subsets else "validation and test"
    message = (
        f"{'column' if len(trending) == 1 else 'columns'} {names} "
        f"{'trends' if len(trending) == 1 else 'trend'} with time (Spearman's rho of value on "
        f"row order within train: {figures}); a {strategy} split puts the later values in "
        f"{later}, so their shift from train is expected and not warned about"
    )
    numbers = {f"rho_{c}": rho for c, rho in trending.items()}
    return kept, SplitWarning("trend", "test", message, numbers)


def _trend(
    subsets: Mapping[Subset, pa.Table], subset: Subset, column: str, thresholds: Thresholds
) -> float | None:
    """Spearman's rho of ``column`` on row order within train when its shift in ``subset``
    is its trend (see the module docstring), else ``None``."""
    kind = subsets["train"].schema.field(column).type
    if not (pa.types.is_integer(kind) or pa.types.is_floating(kind)):
        return None
    train = _numbers(subsets["train"].column(column))
    later = _numbers(subsets[subset].column(column))
    present = ~np.isnan(train)
    if present.sum() < 3 or np.isnan(later).all():
        return None
    values = train[present]
    if np.all(values == values[0]):
        return None
    rho = float(stats.spearmanr(np.flatnonzero(present), values).statistic)
    if not abs(rho) >= thresholds.trend:
        return None
    beyond = float(np.nanmedian(later)) - float(np.median(values))
    return rho if beyond * rho > 0 else None


def _numbers(column: pa.ChunkedArray) -> npt.NDArray[np.float64]:
    return np.asarray(
        pc.cast(column, pa.float64()).to_numpy(zero_copy_only=False), dtype=np.float64
    )
