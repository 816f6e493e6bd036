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

import skops.io as sio

from gristmill.core.imports import split_import_path
from gristmill.core.trusted import trusted_loads
from gristmill.learners.base import FittedLearner

TRUSTED_MODULES = ("sklearn", "numpy", "scipy", "gristmill", "lightgbm", "xgboost")
MEDIA_TYPE = "application/vnd.gristmill.learner+skops"


def dumps(fitted: FittedLearner) -> bytes:
    """The skops bytes of ``fitted``."""
    data: bytes = sio.dumps(fitted)
    return data


def trusted_packages(algorithms: Iterable[str]) -> list[str]:
    """The packages to trust for models of ``algorithms``: the top-level package of each
    one named by import path (``mymodels:Shrunk`` → ``mymodels``) that is not trusted
    already. The spec naming them is trusted like code, so their fitted types may load."""
    packages = set()
    for algorithm in algorithms:
        parsed = split_import_path(algorithm) if ":" in algorithm or "." in algorithm else None
        if parsed is not None:
            packages.add(parsed[0].split(".")[0])
    return sorted(packages - set(TRUSTED_MODULES))


def loads(data: bytes, *, also_trust: Iterable[str] = ()) -> FittedLearner:
    """The fitted learner in ``data``, built only if every type in it is trusted."""
    loaded: FittedLearner = trusted_loads(
        data,
        FittedLearner,
        what="learner",
        modules=(*TRUSTED_MODULES, *also_trust),
        hint="pass also_trust=[...] to trust the package of an estimator named by import path",
    )
    return loaded
