"""Classification metrics and curves, checked against scikit-learn on real data."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from sklearn import metrics as skm
from sklearn.calibration import calibration_curve
from sklearn.preprocessing import label_binarize

from gristmill.errors import DataError
from gristmill.evaluation import EvaluationResult, evaluate
from gristmill.evaluation.result import MAX_POINTS

from .conftest import Output

ALL = [
    "accuracy", "precision", "recall", "f1", "roc_auc", "pr_auc", "log_loss",
    "confusion_matrix", "calibration",
]  # fmt: skip


def _run(out: Output, names: list[str] = ALL) -> EvaluationResult:
    return evaluate("classification", names, out.y_true, out.y_pred, out.proba, classes=out.classes)


def test_binary_metrics_equal_sklearns(cancer: Output) -> None:
    result = _run(cancer)
    m = result.metrics
    y, p, proba = cancer.y_true, cancer.y_pred, cancer.proba
    assert m["accuracy"] == pytest.approx(skm.accuracy_score(y, p))
    assert m["precision"] == pytest.approx(skm.precision_score(y, p))
    assert m["recall"] == pytest.approx(skm.recall_score(y, p))
    assert m["f1"] == pytest.approx(skm.f1_score(y, p))
    assert m["roc_auc"] == pytest.approx(skm.roc_auc_score(y, proba[:, 1]))
    assert m["pr_auc"] == pytest.approx(skm.average_precision_score(y, proba[:, 1]))
    assert m["log_loss"] == pytest.approx(skm.log_loss(y, proba))
    assert m["brier"] == pytest.approx(skm.brier_score_loss(y, proba[:, 1]))
    assert m["confusion_matrix"]["matrix"] == skm.confusion_matrix(y, p).tolist()
    assert result.details == {
        "rows": len(y), "classes": [0, 1], "average": "binary", "positive_class": 1,
    }  # fmt: skip
    # The positive class is the second: precision of class 0 would differ.
    assert m["precision"] != pytest.approx(skm.precision_score(y, p, pos_label=0))


def test_multiclass_metrics_are_macro_and_one_vs_rest(wine: Output) -> None:
    m = _run(wine).metrics
    y, p, proba = wine.y_true, wine.y_pred, wine.proba
    assert m["precision"] == pytest.approx(skm.precision_score(y, p, average="macro"))
    assert m["recall"] == pytest.approx(skm.recall_score(y, p, average="macro"))
    assert m["f1"] == pytest.approx(skm.f1_score(y, p, average="macro"))
    assert m["roc_auc"] == pytest.approx(skm.roc_auc_score(y, proba, multi_class="ovr"))
    expected_ap = skm.average_precision_score(label_binarize(y, classes=[0, 1, 2]), proba)
    assert m["pr_auc"] == pytest.approx(expected_ap)
    assert m["brier"] == pytest.approx(skm.brier_score_loss(y, proba, labels=[0, 1, 2]))
    assert np.array(m["confusion_matrix"]["matrix"]).sum() == len(y)


def test_boolean_classes_with_a_probability_frame(cancer: Output) -> None:
    # A label derived by expression (`late: delay > 15`) has the classes False and True:
    # picking them as a frame's columns must not read them as a mask.
    truth, predicted = cancer.y_true.astype(bool), cancer.y_pred.astype(bool)
    frame = pd.DataFrame(cancer.proba, columns=[False, True])
    result = evaluate("classification", ["roc_auc", "log_loss"], truth, predicted, frame)
    assert result.metrics["roc_auc"] == pytest.approx(skm.roc_auc_score(truth, cancer.proba[:, 1]))
    assert result.metrics["log_loss"] == pytest.approx(skm.log_loss(truth, cancer.proba))


def test_string_classes_with_a_probability_frame(penguins: Output) -> None:
    frame = pd.DataFrame(penguins.proba, columns=penguins.classes)
    reordered = frame[list(reversed(penguins.classes))]
    result = evaluate(
        "classification", ["roc_auc", "log_loss", "confusion_matrix"],
        penguins.y_true, penguins.y_pred, reordered,
    )  # fmt: skip
    expected = skm.roc_auc_score(penguins.y_true, penguins.proba, multi_class="ovr")
    assert result.metrics["roc_auc"] == pytest.approx(expected)
    assert result.metrics["log_loss"] == pytest.approx(
        skm.log_loss(penguins.y_true, penguins.proba)
    )
    assert result.metrics["confusion_matrix"]["labels"] == ["Adelie", "Chinstrap", "Gentoo"]
    # An array in a given class order is put in sorted order the same way.
    same = evaluate(
        "classification", ["log_loss"], penguins.y_true, penguins.y_pred,
        reordered.to_numpy(), classes=list(reordered.columns),
    )  # fmt: skip
    assert same.metrics["log_loss"] == pytest.approx(result.metrics["log_loss"])
    assert set(result.curves["roc"]["classes"]) == {"Adelie", "Chinstrap", "Gentoo"}


def test_roc_curve_points_are_thinned_and_json(cancer: Output) -> None:
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 3000)
    score = np.clip(y * 0.3 + rng.random(3000) * 0.7, 0, 1)
    proba = np.column_stack([1 - score, score])
    result = evaluate("classification", ["roc_auc", "pr_auc"], y, (score > 0.5).astype(int), proba)
    roc = result.curves["roc"]["classes"]["1"]
    full_fpr, full_tpr, _ = skm.roc_curve(y, score)
    assert len(full_fpr) > MAX_POINTS
    assert len(roc["fpr"]) <= MAX_POINTS
    assert roc["fpr"][0] == 0.0 and roc["tpr"][-1] == 1.0
    assert roc["thresholds"][0] is None  # scikit-learn's first threshold is +inf
    assert roc["auc"] == pytest.approx(skm.auc(full_fpr, full_tpr))
    pr = result.curves["pr"]["classes"]["1"]
    assert len(pr["precision"]) <= MAX_POINTS
    assert pr["prevalence"] == pytest.approx(y.mean())
    json.dumps(result.to_dict(), allow_nan=False)


def test_calibration_curve_equals_sklearns(cancer: Output) -> None:
    result = _run(cancer, ["calibration"])
    line = result.curves["calibration"]["classes"]["1"]
    fraction, mean_predicted = calibration_curve(cancer.y_true == 1, cancer.proba[:, 1], n_bins=10)
    np.testing.assert_allclose(line["fraction_positive"], fraction)
    np.testing.assert_allclose(line["mean_predicted"], mean_predicted)
    assert sum(line["count"]) == len(cancer.y_true)
    assert len(line["count"]) == len(fraction)


def test_class_missing_from_the_test_set_is_a_data_error(wine: Output) -> None:
    keep = wine.y_true != 2
    with pytest.raises(DataError, match="roc_auc is undefined here: class 2 is absent"):
        evaluate(
            "classification", ["roc_auc"], wine.y_true[keep], wine.y_pred[keep],
            wine.proba[keep], classes=wine.classes,
        )  # fmt: skip
