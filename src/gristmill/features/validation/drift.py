"""Drift between a reference sample and a current one: PSI, Kolmogorov-Smirnov, chi-square.

Pure functions on NumPy arrays and category counts, so monitoring reuses them on prediction
logs. Conventions:

* **PSI** (population stability index) = Σ (cur - ref) · ln(cur / ref) over bins of shares.
  Numeric bins are cut at the reference's deciles (so each holds about a tenth of it);
  categorical bins are the categories. Shares are floored at ``EPSILON`` so a bin empty on
  one side counts as a large change instead of an infinite one. Drift when PSI > threshold
  (default ``PSI_THRESHOLD``; 0.1 to 0.2 is usually read as "moderate", above 0.2 "major").
* **KS** (two-sample Kolmogorov-Smirnov, numeric) on at most ``KS_SAMPLE`` values a side,
  drawn with a fixed seed (the same inputs give the same answer).
* **chi2** (chi-square test of homogeneity) on the 2-by-k table of category counts; a
  numeric column is first binned at the reference's deciles.

A test is drift when its p-value < threshold (default ``P_VALUE_THRESHOLD``). Note that
with large samples a test detects even tiny differences; PSI measures their size.

Monitoring keeps no values, only counts that add up over a window's files: the same PSI
and chi-square on counts, and KS from counts on ``KS_BINS`` bins cut at the reference's
quantiles (``ks_from_counts``): the largest gap between the two distribution functions at
the bin edges, within one bin's share of the reference (1/``KS_BINS``) of the exact one,
with the p-value for at most ``KS_SAMPLE`` values a side as ``ks_test`` takes.
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping
from dataclasses import asdict, dataclass
from typing import Any, Literal

import numpy as np
import numpy.typing as npt
from scipy import special, stats

from gristmill.features.validation.profiles import sorted_quantiles

DriftMethod = Literal["auto", "psi", "ks", "chi2"]

PSI_THRESHOLD = 0.2
P_VALUE_THRESHOLD = 0.01
EPSILON = 1e-4
BINS = 10
KS_SAMPLE = 10_000
KS_BINS = 200

Counts = npt.NDArray[np.int64]
FloatArray = npt.NDArray[np.float64]
Numbers = npt.NDArray[Any]  # integers or floats


@dataclass(frozen=True)
class DriftResult:
    """The outcome of one drift test: PSI in ``statistic`` (``p_value`` ``None``), or a
    test statistic with its p-value. ``drifted`` compares it with ``threshold``."""

    method: Literal["psi", "ks", "chi2"]
    statistic: float
    threshold: float
    drifted: bool
    p_value: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def quantile_edges(
    reference: npt.ArrayLike, bins: int = BINS, *, assume_sorted: bool = False
) -> FloatArray:
    """The inner bin edges at the reference's quantiles ``1/bins … (bins-1)/bins``, unique."""
    values = _numbers(reference)
    if values.size == 0:
        return np.empty(0)
    if not assume_sorted:
        values = np.sort(values)
    edges: FloatArray = np.unique(sorted_quantiles(values, np.arange(1, bins) / bins))
    return edges


def bin_counts(values: npt.ArrayLike, edges: FloatArray, *, assume_sorted: bool = False) -> Counts:
    """Rows per bin ``(-inf, e0], (e0, e1], …, (e_last, inf)``; ``len(edges) + 1`` counts.

    With ``assume_sorted`` the values are not sorted again, and counting costs
    ``len(edges)`` binary searches.
    """
    data = _numbers(values)
    if not assume_sorted:
        data = np.sort(data)
    cuts = np.searchsorted(data, edges, side="right")
    counts: Counts = np.diff(np.concatenate(([0], cuts, [data.size]))).astype(np.int64)
    return counts


def psi(reference_counts: npt.ArrayLike, current_counts: npt.ArrayLike) -> float:
    """PSI of two aligned count vectors (the same bins or categories, in the same order)."""
    ref, cur = _shares(reference_counts), _shares(current_counts)
    return float(np.sum((cur - ref) * np.log(cur / ref)))


def ks_test(
    reference: npt.ArrayLike, current: npt.ArrayLike, *, sample: int = KS_SAMPLE, seed: int = 0
) -> tuple[float, float]:
    """``(statistic, p_value)`` of the two-sample KS test on at most ``sample`` values a side."""
    rng = np.random.default_rng(seed)
    ref, cur = (_subsample(_numbers(side), sample, rng) for side in (reference, current))
    if ref.size == 0 or cur.size == 0:
        return 0.0, 1.0
    result = stats.ks_2samp(ref, cur)
    return float(result.statistic), float(result.pvalue)


def ks_from_counts(
    reference_counts: npt.ArrayLike, current_counts: npt.ArrayLike, *, sample: int = KS_SAMPLE
) -> tuple[float, float]:
    """``(statistic, p_value)`` of the two-sample KS test from two samples' counts on the
    same ordered bins (see the module docstring); ``(0, 1)`` when a side is empty.

    The p-value is the asymptotic one (as ``scipy.stats.ks_2samp`` computes for large
    samples) for ``min(n, sample)`` and ``min(m, sample)`` values: a window of a million
    rows is judged as ``ks_test`` judges its subsample, not by a test that flags any
    difference at all.
    """
    ref = np.asarray(reference_counts, dtype=np.float64)
    cur = np.asarray(current_counts, dtype=np.float64)
    n, m = ref.sum(), cur.sum()
    if n <= 0 or m <= 0:
        return 0.0, 1.0
    gap = float(np.max(np.abs(np.cumsum(ref) / n - np.cumsum(cur) / m)))
    n, m = min(n, sample), min(m, sample)
    effective = round(n * m / (n + m))
    p_value = float(stats.kstwo.sf(gap, max(effective, 1)))
    return gap, min(max(p_value, 0.0), 1.0)


def chi2_test(
    reference_counts: npt.ArrayLike, current_counts: npt.ArrayLike
) -> tuple[float, float]:
    """``(statistic, p_value)`` of the chi-square test that two aligned count vectors come from
    one distribution. Bins empty on both sides are dropped; fewer than two left is no drift."""
    table = np.vstack([np.asarray(reference_counts), np.asarray(current_counts)]).astype(float)
    table = table[:, table.sum(axis=0) > 0]
    if table.shape[1] < 2 or (table.sum(axis=1) == 0).any():
        return 0.0, 1.0
    # chi2_contingency(table, correction=False) for a 2-by-k table, without its per-call
    # overhead (monitoring judges every column of a window after each file)
    expected = np.outer(table.sum(axis=1), table.sum(axis=0)) / table.sum()
    statistic = float(np.sum((table - expected) ** 2 / expected))
    return statistic, float(special.chdtrc(table.shape[1] - 1, statistic))


def aligned_counts(
    reference: Mapping[Hashable, int], current: Mapping[Hashable, int]
) -> tuple[list[Hashable], Counts, Counts]:
    """The union of categories (reference's first) and both sides' counts over it."""
    categories = [*reference, *(c for c in current if c not in reference)]
    ref = np.array([reference.get(c, 0) for c in categories], dtype=np.int64)
    cur = np.array([current.get(c, 0) for c in categories], dtype=np.int64)
    return categories, ref, cur


def numeric_drift(
    reference: npt.ArrayLike,
    current: npt.ArrayLike,
    *,
    method: DriftMethod = "auto",
    threshold: float | None = None,
    assume_sorted: bool = False,
) -> DriftResult:
    """Drift of a numeric column: ``auto`` is PSI; ``chi2`` tests the reference-decile bins."""
    ref, cur = _numbers(reference), _numbers(current)
    if not assume_sorted:
        ref, cur = np.sort(ref), np.sort(cur)
    if method == "ks":
        statistic, p_value = ks_test(ref, cur)
        return p_value_result("ks", statistic, p_value, threshold)
    edges = quantile_edges(ref, assume_sorted=True)
    ref_counts = bin_counts(ref, edges, assume_sorted=True)
    cur_counts = bin_counts(cur, edges, assume_sorted=True)
    if method == "chi2":
        return p_value_result("chi2", *chi2_test(ref_counts, cur_counts), threshold)
    return psi_result(psi(ref_counts, cur_counts), threshold)


def categorical_drift(
    reference: Mapping[Hashable, int],
    current: Mapping[Hashable, int],
    *,
    method: DriftMethod = "auto",
    threshold: float | None = None,
) -> DriftResult:
    """Drift of category counts: ``auto`` is chi-square; ``psi`` compares shares; ``ks``
    does not apply to categories, so chi-square answers with the same p-value threshold."""
    _, ref, cur = aligned_counts(reference, current)
    if method == "psi":
        return psi_result(psi(ref, cur), threshold)
    return p_value_result("chi2", *chi2_test(ref, cur), threshold)


def psi_result(value: float, threshold: float | None) -> DriftResult:
    """A PSI judged against ``threshold`` (default ``PSI_THRESHOLD``)."""
    limit = PSI_THRESHOLD if threshold is None else threshold
    return DriftResult("psi", value, limit, value > limit)


def p_value_result(
    method: Literal["ks", "chi2"], statistic: float, p_value: float, threshold: float | None
) -> DriftResult:
    """A test's statistic and p-value judged against ``threshold`` (default
    ``P_VALUE_THRESHOLD``)."""
    limit = P_VALUE_THRESHOLD if threshold is None else threshold
    return DriftResult(method, statistic, limit, p_value < limit, p_value)


def _shares(counts: npt.ArrayLike) -> FloatArray:
    data = np.asarray(counts, dtype=np.float64)
    total = data.sum()
    shares = data / total if total > 0 else np.zeros_like(data)
    clipped: FloatArray = np.maximum(shares, EPSILON)
    return clipped


def _numbers(values: npt.ArrayLike) -> Numbers:
    # No copy for an array of numbers already; integers stay integers (exact, and never NaN).
    data: Numbers = np.asarray(values).ravel()
    if data.dtype.kind not in "iuf":
        data = data.astype(np.float64)
    if data.dtype.kind == "f":
        missing = np.isnan(data)
        if missing.any():
            data = data[~missing]
    return data


def _subsample(values: Numbers, size: int, rng: np.random.Generator) -> Numbers:
    if values.size <= size:
        return values
    picked: Numbers = values[rng.choice(values.size, size, replace=False)]
    return picked
