"""Forecasting evaluators: MAPE, sMAPE and MASE, as fractions (0.1 is 10 %).

MAPE is undefined where a true value is 0 and is refused there (use sMAPE or MASE).
sMAPE is ``mean(2|y - ŷ| / (|y| + |ŷ|))``, in [0, 2], counting 0 where both are 0. MASE
scales the MAE by the in-sample MAE of the one-step naive forecast on the training series
(``train_y``), so below 1 beats "tomorrow is like today".
"""

from __future__ import annotations

import numpy as np
from sklearn import metrics as skm

from gristmill.errors import ConfigError, DataError
from gristmill.evaluation.result import Part, Scored, number


def mape(scored: Scored) -> Part:
    zeros = int(np.sum(np.asarray(scored.truth, dtype=float) == 0))
    if zeros:
        raise DataError(
            f"mape is undefined where the true value is 0 ({zeros} row(s)); use smape or mase"
        )
    value = skm.mean_absolute_percentage_error(scored.truth, scored.y_pred)
    return Part({"mape": number(value)}, {})


def smape(scored: Scored) -> Part:
    truth = np.asarray(scored.truth, dtype=float)
    predicted = np.asarray(scored.y_pred, dtype=float)
    scale = np.abs(truth) + np.abs(predicted)
    error = 2 * np.abs(truth - predicted)
    ratio = np.divide(error, scale, out=np.zeros_like(error), where=scale > 0)
    return Part({"smape": number(ratio.mean())}, {})


def mase(scored: Scored) -> Part:
    if scored.train_y is None:
        raise ConfigError("mase needs the training series: pass train_y to evaluate")
    train = np.asarray(scored.train_y, dtype=float)
    train = train[~np.isnan(train)]
    if len(train) < 2:
        raise DataError("mase needs a training series of at least two values")
    naive = np.mean(np.abs(np.diff(train)))
    if naive == 0:
        raise DataError("mase is undefined: the training series is constant")
    value = skm.mean_absolute_error(scored.truth, scored.y_pred) / naive
    return Part({"mase": number(value)}, {})
