"""A classifier's quality estimated without labels: confidence-based performance estimation
(CBPE, as NannyML describes it), from the probabilities a version gave its predictions.

If the probabilities are *calibrated* — of the rows given probability 0.8 for a class, 80 %
are of that class — then each prediction is right with the probability it gave its
predicted class, and the confusion matrix has an expected value. Per class ``k``, over
rows with predicted class ``ŷ`` and probability ``p_k``::

    TP_k = Σ_{ŷ=k} p_k      FP_k = Σ_{ŷ=k} (1 - p_k)      FN_k = Σ_{ŷ≠k} p_k

so the expected accuracy is the mean of ``p_ŷ``, F1 is ``2TP / (2TP + FP + FN)`` (of the
positive class — the second — for two classes, the macro mean for more), and ROC AUC is
the chance that a row of the class outranks a row not of it, each row counting ``p_k`` as
of the class and ``1 - p_k`` as not, ranked by ``p_k`` in ``BINS`` equal bins (rows of one
bin count as ties: the binning moves the figure by well under 0.01).

All of it is sums (``tally``), so a window's sums grow file by file as the prediction log
is written, and are turned into figures when read (``figures``).

**The assumption** is calibration, and models are often not calibrated. So the
probabilities are first mapped through the version's own reliability curve measured at
evaluation on its test subset — the reference — (``Calibration``: per class and bin of
probability, the fraction of the class the reference saw there), when that curve holds
at least ``MIN_REFERENCE_ROWS`` rows. What stays assumed: that the relation between inputs
and outcomes seen on the reference still holds (no concept drift), and that inputs do not
move where the model never saw data. The estimate's own error, once labels arrive, is
kept beside it (``estimate_error``), so how far to trust it is measured, not assumed.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from gristmill.core.feedback import label_text

BINS = 50
REFERENCE_BINS = 10
"""The bins of the evaluation's reliability curve (``evaluation.classification``)."""
MIN_REFERENCE_ROWS = 100
"""A reliability curve over fewer rows calibrates nothing (the probabilities are used as
they are): its points are too noisy to correct them."""


def tally(classes: Sequence[str], predicted: Sequence[Any], proba: np.ndarray) -> dict[str, Any]:
    """The estimate's sums over rows: ``predicted`` classes (``core.feedback.label_text``
    compares them with ``classes``) and ``proba``
    (rows x classes, in the order of ``classes``); rows whose prediction is not one of
    ``classes`` are left out."""
    index = {label_text(name): i for i, name in enumerate(classes)}
    chosen = np.array([index.get(label_text(p), -1) for p in predicted], dtype=np.int64)
    keep = chosen >= 0
    chosen, proba = chosen[keep], np.asarray(proba, dtype=float)[keep]
    rows = len(chosen)
    correct = float(proba[np.arange(rows), chosen].sum()) if rows else 0.0
    per_class = {}
    for k, name in enumerate(classes):
        p = proba[:, k] if rows else np.empty(0)
        mine = chosen == k
        where = np.minimum((p * BINS).astype(np.int64), BINS - 1)
        per_class[name] = {
            "tp": float(p[mine].sum()),
            "fp": float((1 - p[mine]).sum()),
            "fn": float(p[~mine].sum()),
            "count": np.bincount(where, minlength=BINS).astype(int).tolist(),
            "sum": np.bincount(where, weights=p, minlength=BINS).tolist(),
        }
    return {"rows": rows, "correct": correct, "classes": per_class}


def figures(sums: Mapping[str, Any], classes: Sequence[str]) -> dict[str, float | None]:
    """Expected accuracy, F1 and ROC AUC from ``tally`` sums (added up over any rows);
    ``None`` for a figure the rows cannot give (no rows; a class no row may be of)."""
    rows = sums.get("rows") or 0
    if not rows or not classes:
        return {"accuracy": None, "f1": None, "roc_auc": None}
    per_class = sums.get("classes") or {}
    scored = [classes[1]] if len(classes) == 2 else list(classes)
    f1s = [_f1(per_class.get(name) or {}) for name in scored]
    aucs = [_auc(per_class.get(name) or {}) for name in scored]
    return {
        "accuracy": float(sums.get("correct", 0.0)) / rows,
        "f1": None if None in f1s else float(np.mean([f for f in f1s if f is not None])),
        "roc_auc": None if None in aucs else float(np.mean([a for a in aucs if a is not None])),
    }


def _f1(part: Mapping[str, Any]) -> float | None:
    tp, fp, fn = (float(part.get(k, 0.0)) for k in ("tp", "fp", "fn"))
    denominator = 2 * tp + fp + fn
    return 2 * tp / denominator if denominator > 0 else None


def _auc(part: Mapping[str, Any]) -> float | None:
    counts = np.asarray(part.get("count") or [], dtype=float)
    positives = np.asarray(part.get("sum") or [], dtype=float)
    if not len(counts):
        return None
    negatives = counts - positives
    total_pos, total_neg = positives.sum(), negatives.sum()
    if total_pos <= 0 or total_neg <= 0:
        return None
    above = np.cumsum(positives[::-1])[::-1] - positives  # positives in higher bins
    return float((negatives * (above + positives / 2)).sum() / (total_pos * total_neg))


@dataclass(frozen=True)
class Calibration:
    """Per class, the fraction of the class seen on the reference in each of the
    reliability curve's ``REFERENCE_BINS`` equal bins of probability (made monotone by an
    isotonic fit weighted by the bins' rows; a bin the reference left empty takes its
    neighbours' line): a probability maps to its bin's fraction (histogram binning). So
    the sum over a bin's rows is the number of that class the reference saw at that
    confidence, which is what the estimate adds up. A class without a curve is kept as
    it is."""

    bins: Mapping[str, tuple[float, ...]]

    @classmethod
    def from_curves(cls, curves: Mapping[str, Any]) -> Calibration | None:
        """From an evaluation's ``calibration`` curve (``{"classes": {label: {"mean_predicted",
        "fraction_positive", "count"}}}``, one point per non-empty bin of
        ``REFERENCE_BINS``); ``None`` when no class's curve holds enough rows."""
        from sklearn.isotonic import IsotonicRegression

        found = {}
        for name, line in (curves.get("classes") or {}).items():
            x = np.asarray(line.get("mean_predicted") or [], dtype=float)
            y = np.asarray(line.get("fraction_positive") or [], dtype=float)
            weight = np.asarray(line.get("count") or [], dtype=float)
            if not (len(x) == len(y) == len(weight)) or weight.sum() < MIN_REFERENCE_ROWS:
                continue
            fitted = IsotonicRegression(y_min=0.0, y_max=1.0).fit(x, y, sample_weight=weight)
            centres = (np.arange(REFERENCE_BINS) + 0.5) / REFERENCE_BINS
            where = np.minimum((x * REFERENCE_BINS).astype(int), REFERENCE_BINS - 1)
            line_at = np.interp(centres, x, fitted.predict(x))  # empty bins: the neighbours'
            line_at[where] = fitted.predict(x)
            found[str(name)] = tuple(line_at.tolist())
        return cls(found) if found else None

    def apply(self, classes: Sequence[str], proba: np.ndarray) -> np.ndarray:
        """``proba`` (rows x classes) mapped class by class; with two classes the first is
        one minus the second, with more each row is scaled to sum to one again."""
        out = np.array(proba, dtype=float, copy=True)
        for k, name in enumerate(classes):
            if name in self.bins:
                where = np.clip((out[:, k] * REFERENCE_BINS).astype(int), 0, REFERENCE_BINS - 1)
                out[:, k] = np.asarray(self.bins[name])[where]
        if len(classes) == 2 and classes[1] in self.bins:
            out[:, 0] = 1.0 - out[:, 1]
        elif len(classes) > 2:
            total = out.sum(axis=1, keepdims=True)
            out = np.divide(out, total, out=np.full_like(out, 1 / len(classes)), where=total > 0)
        return out
