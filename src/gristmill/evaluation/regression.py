"""Regression evaluators: RMSE, MAE, R² and the residuals (true minus predicted)."""

from __future__ import annotations

import numpy as np
from sklearn import metrics as skm

from gristmill.evaluation.result import Part, Scored, number, points, thin


def rmse(scored: Scored) -> Part:
    value = np.sqrt(skm.mean_squared_error(scored.truth, scored.y_pred))
    return Part({"rmse": number(value)}, {})


def mae(scored: Scored) -> Part:
    return Part({"mae": number(skm.mean_absolute_error(scored.truth, scored.y_pred))}, {})


def r2(scored: Scored) -> Part:
    return Part({"r2": number(skm.r2_score(scored.truth, scored.y_pred))}, {})


def residuals(scored: Scored) -> Part:
    """A summary of the residuals, and residual against prediction (thinned, by prediction)."""
    predicted = np.asarray(scored.y_pred, dtype=float)
    residual = np.asarray(scored.truth, dtype=float) - predicted
    quantiles = np.quantile(residual, [0.05, 0.25, 0.5, 0.75, 0.95])
    summary = {
        "mean": number(residual.mean()),
        "std": number(residual.std()),
        "min": number(residual.min()),
        **{
            key: number(value)
            for key, value in zip(("p05", "p25", "median", "p75", "p95"), quantiles, strict=True)
        },
        "max": number(residual.max()),
        "count": len(residual),
    }
    order = np.argsort(predicted, kind="stable")
    keep = order[thin(len(order))]
    curve = {"predicted": points(predicted, keep), "residual": points(residual, keep)}
    return Part({"residuals": summary}, {"residuals": curve})
