"""Classification evaluators: label metrics, probability metrics and their curves.

With two classes, precision, recall and F1 are those of the positive class, the second in
``classes`` (scikit-learn's order: ``predict_proba``'s second column); with more they are
macro averages. ROC AUC is one-vs-rest (macro) for more than two classes, PR AUC the mean
average precision over classes. Curves are one line per class (only the positive class when
there are two), each thinned to at most ``MAX_POINTS`` points; the AUC reported is computed
on the full curve.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
from sklearn import metrics as skm
from sklearn.calibration import calibration_curve

from gristmill.errors import DataError
from gristmill.evaluation.result import Part, Scored, label, number, points, thin

CALIBRATION_BINS = 10


def accuracy(scored: Scored) -> Part:
    return Part({"accuracy": number(skm.accuracy_score(scored.truth, scored.y_pred))}, {})


def averaging(scored: Scored) -> dict[str, Any]:
    """The keyword arguments choosing binary or macro averaging for these classes."""
    if len(scored.classes) == 2:
        return {"average": "binary", "pos_label": scored.classes[1]}
    return {"average": "macro", "labels": scored.classes}


def _averaged(name: str, metric: Callable[..., Any]) -> Callable[[Scored], Part]:
    def evaluate(scored: Scored) -> Part:
        value = metric(scored.truth, scored.y_pred, zero_division=0, **averaging(scored))
        return Part({name: number(value)}, {})

    evaluate.__name__ = name
    return evaluate


precision = _averaged("precision", skm.precision_score)
recall = _averaged("recall", skm.recall_score)
f1 = _averaged("f1", skm.f1_score)


def one_vs_rest(scored: Scored, metric: str) -> Iterator[tuple[Any, np.ndarray, np.ndarray]]:
    """(class, is-this-class truth, this class's probability) for each class drawn.

    ``DataError`` when a class is absent from ``y_true`` (or is all of it): its curve and
    AUC are undefined.
    """
    proba = _proba(scored)
    pairs = [(1, scored.classes[1])] if len(scored.classes) == 2 else enumerate(scored.classes)
    for index, cls in pairs:
        truth = scored.truth == cls
        if truth.all() or not truth.any():
            raise DataError(
                f"{metric} is undefined here: class {label(cls)!r} is "
                f"{'all' if truth.all() else 'absent from'} the true values"
            )
        yield cls, truth, proba[:, index]


def roc_auc(scored: Scored) -> Part:
    lines = {}
    for cls, truth, score in one_vs_rest(scored, "roc_auc"):
        fpr, tpr, thresholds = skm.roc_curve(truth, score)
        keep = thin(len(fpr))
        lines[str(label(cls))] = {
            "fpr": points(fpr, keep),
            "tpr": points(tpr, keep),
            "thresholds": points(thresholds, keep),
            "auc": number(skm.auc(fpr, tpr)),
        }
    # The macro mean of one-vs-rest AUCs is scikit-learn's multi_class="ovr".
    value = np.mean([line["auc"] for line in lines.values()])
    return Part({"roc_auc": number(value)}, {"roc": {"classes": lines}})


def pr_auc(scored: Scored) -> Part:
    lines = {}
    for cls, truth, score in one_vs_rest(scored, "pr_auc"):
        precision_, recall_, thresholds = skm.precision_recall_curve(truth, score)
        keep = thin(len(precision_))
        lines[str(label(cls))] = {
            "precision": points(precision_, keep),
            "recall": points(recall_, keep),
            # One threshold fewer than points: the last point (recall 0) has none.
            "thresholds": points(np.append(thresholds, np.nan), keep),
            "average_precision": number(skm.average_precision_score(truth, score)),
            "prevalence": number(np.mean(truth)),
        }
    value = np.mean([line["average_precision"] for line in lines.values()])
    return Part({"pr_auc": number(value)}, {"pr": {"classes": lines}})


def log_loss(scored: Scored) -> Part:
    value = skm.log_loss(scored.truth, _proba(scored), labels=scored.classes)
    return Part({"log_loss": number(value)}, {})


def confusion_matrix(scored: Scored) -> Part:
    matrix = skm.confusion_matrix(scored.truth, scored.y_pred, labels=scored.classes)
    table = {
        "labels": [label(cls) for cls in scored.classes],
        "matrix": matrix.tolist(),
        "rows": "true class",
        "columns": "predicted class",
    }
    return Part({"confusion_matrix": table}, {})


def brier(scored: Scored) -> Part:
    """The Brier score: binary on the positive class, multiclass summed over classes."""
    proba = _proba(scored)
    if len(scored.classes) == 2:
        value = skm.brier_score_loss(scored.truth == scored.classes[1], proba[:, 1])
    else:
        onehot = scored.truth[:, None] == np.asarray(scored.classes, dtype=object)[None, :]
        value = np.mean(np.sum((proba - onehot) ** 2, axis=1))
    return Part({"brier": number(value)}, {})


def calibration(scored: Scored) -> Part:
    """The reliability curve per class (equal-width bins; empty bins left out) and Brier."""
    edges = np.linspace(0.0, 1.0, CALIBRATION_BINS + 1)
    lines = {}
    for cls, truth, score in one_vs_rest(scored, "calibration"):
        fraction, mean_predicted = calibration_curve(
            truth, score, n_bins=CALIBRATION_BINS, strategy="uniform"
        )
        # The same binning as calibration_curve, to count the rows behind each point.
        counts = np.bincount(np.searchsorted(edges[1:-1], score), minlength=CALIBRATION_BINS)
        lines[str(label(cls))] = {
            "mean_predicted": points(mean_predicted),
            "fraction_positive": points(fraction),
            "count": [int(c) for c in counts[counts > 0]],
        }
    score = brier(scored).metrics["brier"]
    return Part({"brier": score}, {"calibration": {"classes": lines, "brier": score}})


def _proba(scored: Scored) -> np.ndarray:
    if scored.proba is None:
        # The registry refuses these metrics without probabilities before calling them.
        raise TypeError("probabilities are required")
    return scored.proba
