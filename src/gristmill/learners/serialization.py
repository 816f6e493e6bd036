"""A fitted learner to bytes and back, with skops: never plain pickle.

skops records the type of every object it stores and builds nothing it is not told to
trust. ``loads`` trusts only types from scikit-learn, NumPy, SciPy, gristmill and the
optional learners gristmill names itself (LightGBM, XGBoost), plus the module prefixes
given in ``also_trust`` (the package of an estimator named by import path); any other type
in the bytes is refused with a ``DataError`` listing it, before anything is built.

statsmodels is not trusted: a fitted ARIMA/SARIMAX stores its specification, parameters and
training series as plain arrays and rebuilds its statsmodels results on load (see
``learners.forecasting``), so no statsmodels type is ever in the bytes.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import skops.io as sio

from gristmill.errors import DataError
from gristmill.learners.base import FittedLearner

TRUSTED_MODULES = ("sklearn", "numpy", "scipy", "gristmill", "lightgbm", "xgboost")
MEDIA_TYPE = "application/vnd.gristmill.learner+skops"


def dumps(fitted: FittedLearner) -> bytes:
    """The skops bytes of ``fitted``."""
    data: bytes = sio.dumps(fitted)
    return data


def loads(data: bytes, *, also_trust: Iterable[str] = ()) -> FittedLearner:
    """The fitted learner in ``data``, built only if every type in it is trusted."""
    modules = (*TRUSTED_MODULES, *also_trust)
    try:
        types: list[str] = sio.get_untrusted_types(data=data)
    except Exception as exc:
        # Not a zip, or no skops schema inside: skops raises several kinds of errors.
        raise DataError(f"the bytes are not a stored learner: {exc}") from exc
    refused = sorted(name for name in types if not _trusted(name, modules))
    if refused:
        raise DataError(
            f"refusing to load a learner holding untrusted types: {', '.join(refused)}; "
            f"only types from {', '.join(modules)} are loaded (pass also_trust=[...] to "
            "trust the package of an estimator named by import path)"
        )
    try:
        loaded: Any = sio.loads(data, trusted=types)
    except Exception as exc:
        # skops raises many kinds of errors for damaged content; the cause is chained.
        raise DataError(f"the learner could not be loaded: {exc}") from exc
    if not isinstance(loaded, FittedLearner):
        raise DataError(f"the bytes hold a {type(loaded).__name__}, not a fitted learner")
    return loaded


def _trusted(name: str, modules: Iterable[str]) -> bool:
    return any(name == module or name.startswith(module + ".") for module in modules)
