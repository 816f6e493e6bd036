"""Third-party estimators named in a spec: checked to follow scikit-learn's conventions.

Feature steps and learners are copied afresh for every fit the way scikit-learn copies
estimators (``sklearn.base.clone``: the class called again with ``get_params()``). A class
that lacks ``get_params`` — or whose ``__init__`` does not keep its keyword arguments as
they came — cannot be copied; these checks say so when the spec is checked, naming the
class and the fix, instead of a ``TypeError`` from deep inside the first fit.
"""

from __future__ import annotations

from typing import Any

from sklearn.base import clone

from gristmill.errors import ConfigError

_HOW = (
    "with an __init__ that only stores its keyword arguments, unchanged and under the same "
    "names (check their values in fit)"
)


def check_estimator_class(factory: type[Any], *, what: str, has: str, bases: str) -> None:
    """``ConfigError`` unless ``factory`` has scikit-learn's ``get_params``/``set_params``.

    ``what`` names it in the message (``"feature step 'mysteps:Doubler'"``), ``has`` says
    what it was found to have (``"fit and transform"``) and ``bases`` the classes to derive
    it from (``"TransformerMixin and BaseEstimator"``).
    """
    missing = [m for m in ("get_params", "set_params") if not callable(getattr(factory, m, None))]
    if missing:
        name = factory.__qualname__
        raise ConfigError(
            f"{what} is not a scikit-learn estimator: class {name} has {has} but no "
            f"{' or '.join(missing)}, which gristmill needs to copy it for every fit (as "
            f"sklearn.base.clone does); make it one: derive it from {bases} (sklearn.base), "
            f"{_HOW}"
        )


def check_copyable(estimator: Any, *, what: str) -> None:
    """``ConfigError`` unless ``sklearn.base.clone`` can copy ``estimator``."""
    try:
        clone(estimator)
    except Exception as exc:
        # clone raises TypeError (not an estimator) or RuntimeError (a parameter changed);
        # anything else came from the class's own get_params or __init__.
        raise ConfigError(
            f"{what} cannot be copied for a fit as scikit-learn copies estimators: "
            f"{exc if isinstance(exc, TypeError | RuntimeError) else repr(exc)}; "
            f"give it an __init__ {_HOW.removeprefix('with an __init__ ')}"
        ) from exc
