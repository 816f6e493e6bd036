"""Drift tests (PSI, KS, chi-square) on arrays and counts: they find a shift, and only a shift."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from gristmill.features.validation import (
    aligned_counts,
    bin_counts,
    categorical_drift,
    chi2_test,
    ks_from_counts,
    ks_test,
    numeric_drift,
    psi,
    quantile_edges,
)
from gristmill.features.validation.drift import EPSILON, KS_BINS, KS_SAMPLE

N = 20_000


def normal(seed: int, shift: float = 0.0, size: int = N) -> np.ndarray:
    return np.random.default_rng(seed).normal(shift, 1.0, size)


def test_psi_matches_its_formula() -> None:
    ref, cur = np.array([50, 30, 20]), np.array([40, 30, 30])
    expected = sum((c - r) * math.log(c / r) for r, c in [(0.5, 0.4), (0.3, 0.3), (0.2, 0.3)])
    assert psi(ref, cur) == pytest.approx(expected)
    assert psi(ref, ref * 7) == pytest.approx(0.0)


def test_psi_floors_empty_bins_at_epsilon() -> None:
    value = psi([100, 0], [50, 50])
    assert math.isfinite(value)
    assert value == pytest.approx(
        (0.5 - 1) * math.log(0.5) + (0.5 - EPSILON) * math.log(0.5 / EPSILON)
    )


def test_reference_deciles_split_the_reference_in_tenths() -> None:
    ref = normal(0)
    edges = quantile_edges(ref)
    assert len(edges) == 9
    assert bin_counts(ref, edges).tolist() == [N // 10] * 10
    assert (bin_counts(np.sort(ref), edges, assume_sorted=True) == bin_counts(ref, edges)).all()
    # Ties collapse edges into one bin a value; the last bin holds what lies above them.
    tied = np.repeat([1.0, 2.0, 3.0], 100)
    assert quantile_edges(tied).tolist() == [1.0, 2.0, 3.0]
    assert bin_counts(tied, quantile_edges(tied)).tolist() == [100, 100, 100, 0]


@pytest.mark.parametrize("method", ["auto", "psi", "ks", "chi2"])
def test_a_shifted_numeric_distribution_drifts(method: str) -> None:
    result = numeric_drift(normal(0), normal(1, shift=0.5), method=method)  # type: ignore[arg-type]
    assert result.drifted
    assert result.method == ("psi" if method == "auto" else method)
    if result.method == "psi":
        assert result.statistic > 0.2
        assert result.p_value is None
    else:
        assert result.p_value is not None
        assert result.p_value < 1e-6


@pytest.mark.parametrize("method", ["auto", "psi", "ks", "chi2"])
def test_the_same_numeric_distribution_does_not_drift(method: str) -> None:
    result = numeric_drift(normal(0), normal(1), method=method)  # type: ignore[arg-type]
    assert not result.drifted
    if result.method == "psi":
        assert result.statistic < 0.02
    else:
        assert result.p_value is not None
        assert result.p_value > 0.05


def test_a_small_shift_is_below_the_psi_threshold_but_found_by_a_lower_one() -> None:
    ref, cur = normal(0), normal(1, shift=0.1)
    default = numeric_drift(ref, cur)
    assert (default.drifted, default.threshold) == (False, 0.2)
    assert numeric_drift(ref, cur, threshold=0.005).drifted


def test_ks_is_deterministic_and_bounded() -> None:
    big_ref, big_cur = normal(0, size=1_000_000), normal(1, size=1_000_000)
    assert ks_test(big_ref, big_cur) == ks_test(big_ref, big_cur)
    small_ref, small_cur = big_ref[:KS_SAMPLE], big_cur[:KS_SAMPLE]
    expected = stats.ks_2samp(small_ref, small_cur)
    assert ks_test(small_ref, small_cur) == pytest.approx((expected.statistic, expected.pvalue))
    assert ks_test([], [1.0]) == (0.0, 1.0)


def test_nan_is_ignored_by_numeric_drift() -> None:
    ref = np.concatenate([normal(0), [np.nan] * 100])
    assert not numeric_drift(ref, normal(1)).drifted


def test_changed_category_shares_drift() -> None:
    ref = {"basic": 6000, "plus": 3000, "pro": 1000}
    cur = {"basic": 4000, "plus": 3000, "pro": 3000}
    chi2 = categorical_drift(ref, cur)
    assert (chi2.method, chi2.drifted) == ("chi2", True)
    assert chi2.p_value is not None
    assert chi2.p_value < 1e-10
    shares = categorical_drift(ref, cur, method="psi")
    assert (shares.method, shares.drifted) == ("psi", True)
    assert categorical_drift(ref, cur, method="ks").method == "chi2"


def test_the_same_category_shares_do_not_drift() -> None:
    rng = np.random.default_rng(3)
    draws = [rng.choice(3, 10_000, p=[0.6, 0.3, 0.1]) for _ in range(2)]
    ref, cur = ({str(k): int(v) for k, v in enumerate(np.bincount(d))} for d in draws)
    for method in ("auto", "psi"):
        assert not categorical_drift(ref, cur, method=method).drifted  # type: ignore[arg-type]


def test_a_new_category_counts_through_epsilon_not_infinity() -> None:
    result = categorical_drift({"a": 500, "b": 500}, {"a": 450, "b": 450, "c": 100}, method="psi")
    assert math.isfinite(result.statistic)
    assert result.drifted


def test_chi2_matches_scipy_and_handles_degenerate_tables() -> None:
    ref, cur = [60, 30, 10, 0], [50, 30, 20, 0]
    expected = stats.chi2_contingency([[60, 30, 10], [50, 30, 20]], correction=False)
    assert chi2_test(ref, cur) == pytest.approx((expected.statistic, expected.pvalue))
    assert chi2_test([10], [20]) == (0.0, 1.0)
    assert chi2_test([0, 0], [5, 5]) == (0.0, 1.0)


def test_chi2_is_scipys_on_any_two_row_table() -> None:
    rng = np.random.default_rng(4)
    for bins in (2, 3, 10, 40):
        ref, cur = rng.integers(1, 10_000, bins), rng.integers(1, 10_000, bins)
        expected = stats.chi2_contingency([ref, cur], correction=False)
        assert chi2_test(ref, cur) == pytest.approx((expected.statistic, expected.pvalue))


def test_ks_from_counts_on_quantile_bins_is_close_to_the_test_on_values() -> None:
    reference = normal(1)
    edges = quantile_edges(reference, KS_BINS)
    for shift in (0.0, 0.03, 0.1):
        current = normal(2, shift, 8000)
        statistic, p_value = ks_from_counts(
            bin_counts(reference, edges), bin_counts(current, edges)
        )
        exact = stats.ks_2samp(reference[:KS_SAMPLE], current)
        assert abs(statistic - exact.statistic) <= 1 / KS_BINS + 0.01  # bins + subsample
        assert (p_value < 0.01) == (exact.pvalue < 0.01)
    assert ks_from_counts([0, 0], [3, 4]) == (0.0, 1.0)


def test_aligned_counts_put_the_reference_categories_first() -> None:
    categories, ref, cur = aligned_counts({"b": 2, "a": 1}, {"c": 5, "a": 3})
    assert categories == ["b", "a", "c"]
    assert ref.tolist() == [2, 1, 0]
    assert cur.tolist() == [0, 3, 5]


def test_drift_results_are_json_ready() -> None:
    result = numeric_drift(normal(0), normal(1, shift=1.0), method="ks")
    assert set(result.to_dict()) == {"method", "statistic", "p_value", "threshold", "drifted"}
    assert result.to_dict()["threshold"] == 0.01
