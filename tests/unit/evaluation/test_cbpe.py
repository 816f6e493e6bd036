"""CBPE on synthetic data whose probabilities are calibrated by construction: the estimate
lands within a stated tolerance of the figure the labels give.

Tolerances: with n rows the realized accuracy itself varies by about sqrt(a(1-a)/n)
(0.003 at n = 20,000), and binning the probabilities for ROC AUC moves it by < 0.005;
the bounds below are several times those, so the test fails only when the method is wrong.
"""

from __future__ import annotations

import numpy as np
import pytest
from sklearn import metrics as skm

from gristmill.core.tallies import added
from gristmill.evaluation.cbpe import Calibration, figures, tally
from gristmill.evaluation.registry import evaluate

ROWS = 20_000
ACCURACY_TOLERANCE = 0.015
F1_TOLERANCE = 0.02
AUC_TOLERANCE = 0.02


def _binary(seed: int, rows: int = ROWS) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Calibrated positive-class probabilities, the labels drawn from them, predictions."""
    rng = np.random.default_rng(seed)
    p = 1 / (1 + np.exp(-rng.normal(0.3, 1.6, size=rows)))
    truth = (rng.uniform(size=rows) < p).astype(int)
    predicted = (p >= 0.5).astype(int)
    return p, truth, predicted


def test_binary_estimate_is_within_tolerance_of_the_truth() -> None:
    p, truth, predicted = _binary(1)
    classes = ["0", "1"]
    sums = tally(classes, predicted.astype(str).tolist(), np.column_stack([1 - p, p]))
    estimated = figures(sums, classes)
    assert estimated["accuracy"] == pytest.approx(
        skm.accuracy_score(truth, predicted), abs=ACCURACY_TOLERANCE
    )
    assert estimated["f1"] == pytest.approx(skm.f1_score(truth, predicted), abs=F1_TOLERANCE)
    assert estimated["roc_auc"] == pytest.approx(skm.roc_auc_score(truth, p), abs=AUC_TOLERANCE)


def test_multiclass_accuracy_estimate_is_within_tolerance() -> None:
    rng = np.random.default_rng(2)
    proba = rng.dirichlet([0.6, 0.6, 0.6], size=ROWS)
    truth = np.array([rng.choice(3, p=row) for row in proba])
    predicted = proba.argmax(axis=1)
    classes = ["a", "b", "c"]
    sums = tally(classes, [classes[k] for k in predicted], proba)
    estimated = figures(sums, classes)
    assert estimated["accuracy"] == pytest.approx(
        skm.accuracy_score(truth, predicted), abs=ACCURACY_TOLERANCE
    )
    assert estimated["f1"] == pytest.approx(
        skm.f1_score(truth, predicted, average="macro"), abs=F1_TOLERANCE
    )
    assert estimated["roc_auc"] == pytest.approx(
        skm.roc_auc_score(truth, proba, multi_class="ovr"), abs=AUC_TOLERANCE
    )


def test_sums_of_parts_add_up_to_the_sums_of_the_whole() -> None:
    p, _, predicted = _binary(3, rows=1000)
    classes = ["0", "1"]
    proba = np.column_stack([1 - p, p])
    labels = predicted.astype(str).tolist()
    whole = figures(tally(classes, labels, proba), classes)
    first = tally(classes, labels[:300], proba[:300])
    parts = added(first, tally(classes, labels[300:], proba[300:]))
    assert figures(parts, classes) == pytest.approx(whole)


def test_the_reference_curve_calibrates_overconfident_probabilities() -> None:
    p, truth, predicted = _binary(4)
    overconfident = p**2.5 / (p**2.5 + (1 - p) ** 2.5)  # same ranking, pushed to 0 and 1
    classes = ["0", "1"]
    raw = np.column_stack([1 - overconfident, overconfident])
    # the reference: the version's evaluation on its test subset (another draw)
    ref_p, ref_truth, ref_pred = _binary(5, rows=2000)
    ref_over = ref_p**2.5 / (ref_p**2.5 + (1 - ref_p) ** 2.5)
    curve = evaluate(
        "classification",
        ["calibration"],
        ref_truth,
        ref_pred,
        np.column_stack([1 - ref_over, ref_over]),
        classes=[0, 1],
    ).curves["calibration"]
    calibration = Calibration.from_curves({"classes": {"1": curve["classes"]["1"]}})
    assert calibration is not None
    labels = predicted.astype(str).tolist()
    naive = figures(tally(classes, labels, raw), classes)["accuracy"]
    calibrated = figures(tally(classes, labels, calibration.apply(classes, raw)), classes)
    real = skm.accuracy_score(truth, predicted)
    assert naive is not None and naive - real > 3 * ACCURACY_TOLERANCE  # uncalibrated: off
    assert calibrated["accuracy"] == pytest.approx(real, abs=ACCURACY_TOLERANCE)


def test_a_small_reference_calibrates_nothing() -> None:
    line = {"mean_predicted": [0.1, 0.9], "fraction_positive": [0.2, 0.8], "count": [10, 10]}
    assert Calibration.from_curves({"classes": {"1": line}}) is None


def test_no_rows_give_no_figures() -> None:
    sums = tally(["0", "1"], [], np.empty((0, 2)))
    assert figures(sums, ["0", "1"]) == {"accuracy": None, "f1": None, "roc_auc": None}


def test_the_reference_bins_are_the_evaluations() -> None:
    from gristmill.evaluation.cbpe import REFERENCE_BINS
    from gristmill.evaluation.classification import CALIBRATION_BINS

    assert REFERENCE_BINS == CALIBRATION_BINS
