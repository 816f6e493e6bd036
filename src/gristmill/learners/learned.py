"""What a fitted scikit-learn-style estimator learned, as JSON-able data keyed by name.

Coefficients and importances are keyed by feature name; per-class values by class. Values
JSON cannot hold (NaN, infinity) become ``None``; objects among the hyper-parameters
(a nested estimator) become their ``repr``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np


def plain(value: Any) -> Any:
    """``value`` made of JSON types only: numbers, strings, booleans, None, lists, dicts."""
    if isinstance(value, np.ndarray):
        return [plain(item) for item in value.tolist()]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if value is None or isinstance(value, str | int | bool):
        return value
    if isinstance(value, Mapping):
        return {str(key): plain(item) for key, item in value.items()}
    if isinstance(value, Sequence):
        return [plain(item) for item in value]
    return repr(value)


def estimator_learned(
    estimator: Any, feature_names: list[str], classes: list[Any] | None
) -> dict[str, Any]:
    """The learned state of ``estimator``: whichever of the usual attributes it has."""
    kind = type(estimator)
    out: dict[str, Any] = {
        "estimator": f"{kind.__module__}.{kind.__qualname__}",
        "params": plain(estimator.get_params(deep=False)),
    }
    coef = _attribute(estimator, "coef_")
    if coef is not None:
        out["coefficients"] = _per_class(np.asarray(coef, dtype=float), feature_names, classes)
        intercept = np.atleast_1d(np.asarray(_attribute(estimator, "intercept_", 0.0)))
        out["intercept"] = (
            plain(intercept[0])
            if intercept.size == 1
            else dict(
                zip(map(str, classes or range(intercept.size)), plain(intercept), strict=True)
            )
        )
    importances = _attribute(estimator, "feature_importances_")
    if importances is not None:
        ranked = sorted(zip(feature_names, plain(importances), strict=True), key=_by_size)
        out["feature_importances"] = dict(ranked)
    centers = _attribute(estimator, "cluster_centers_")
    if centers is not None:
        out["cluster_centers"] = [
            dict(zip(feature_names, plain(row), strict=True)) for row in np.asarray(centers)
        ]
    out.update(_scalars(estimator))
    return out


def _per_class(coef: np.ndarray, features: list[str], classes: list[Any] | None) -> Any:
    if coef.ndim == 1 or coef.shape[0] == 1:
        # One row: a regressor, or a binary classifier (the row is the second class's).
        return dict(zip(features, plain(coef.reshape(-1)), strict=True))
    names = [str(c) for c in classes] if classes else [str(i) for i in range(coef.shape[0])]
    return {
        name: dict(zip(features, plain(row), strict=True))
        for name, row in zip(names, coef, strict=True)
    }


def _scalars(estimator: Any) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for attribute, key in (("n_iter_", "n_iter"), ("inertia_", "inertia")):
        value = _attribute(estimator, attribute)
        if value is not None:
            out[key] = plain(value)
    tree = _attribute(estimator, "tree_")
    if tree is not None:
        out["tree"] = {
            "node_count": int(tree.node_count),
            "depth": int(tree.max_depth),
            "leaves": int(tree.n_leaves),
        }
    members = _attribute(estimator, "estimators_")
    if isinstance(members, list):
        out["n_estimators"] = len(members)
        depths = [m.tree_.max_depth for m in members if hasattr(m, "tree_")]
        if depths:
            out["mean_tree_depth"] = float(np.mean(depths))
    return out


def _attribute(estimator: Any, name: str, default: Any = None) -> Any:
    try:
        return getattr(estimator, name, default)
    except (AttributeError, ValueError, TypeError):
        # Some estimators compute these lazily and refuse when not applicable.
        return default


def _by_size(item: tuple[str, Any]) -> float:
    value = item[1]
    return -abs(value) if isinstance(value, int | float) else 0.0
