"""The feature step registry: a step is made from its name and its options in the spec.

Built-in steps are known by name (``impute``, ``one_hot`` …). Any other step is named by the
import path of its class, ``mypkg.module:MyTransformer`` or ``mypkg.module.MyTransformer``:
a ``FeatureStep`` subclass takes the options itself; any other scikit-learn-style
transformer (``fit``/``transform``) is applied to the ``columns`` option, its other options
going to its constructor. Either must follow scikit-learn's conventions (``get_params``, an
``__init__`` that only stores its options): every fit works on a fresh copy, and a class
that cannot be copied is refused when the step is made, not in the middle of a fit.
Importing a path runs that module's code, so a spec naming one is trusted like code. A
fitted pipeline holding a custom step is refused on load unless its module is trusted
explicitly (see ``features.serialization``).
"""

from __future__ import annotations

import difflib
import inspect
from collections.abc import Mapping
from typing import Any

from sklearn.base import clone

from gristmill.core.estimators import check_copyable, check_estimator_class
from gristmill.core.imports import import_object
from gristmill.errors import ConfigError
from gristmill.features.steps.base import FeatureStep
from gristmill.features.steps.estimators import EstimatorStep
from gristmill.features.steps.extracts import DateParts, Derive, TextStats, Tfidf
from gristmill.features.steps.gaps import FillGaps
from gristmill.features.steps.selectors import Drop, Filter
from gristmill.features.steps.series import Lag, Rolling
from gristmill.features.steps.transforms import (
    Bucketize,
    Impute,
    Log,
    OneHot,
    Ordinal,
    Power,
    Scale,
    Standardize,
)

STEPS: Mapping[str, type[FeatureStep]] = {
    step.step_name: step
    for step in (
        Bucketize, DateParts, Derive, Drop, FillGaps, Filter, Impute, Lag, Log, OneHot,
        Ordinal, Power, Rolling, Scale, Standardize, TextStats, Tfidf,
    )
}  # fmt: skip


class CustomStep(EstimatorStep):
    """A third-party scikit-learn transformer applied to ``columns``; ``path`` names it."""

    def __init__(self, *, path: str, estimator: Any, columns: list[str]) -> None:
        self.path = path
        self.estimator = estimator
        self.columns = columns

    @property
    def display_name(self) -> str:
        return self.path

    def _estimator(self) -> Any:
        return clone(self.estimator)


def step_names() -> list[str]:
    """The names of the built-in steps, sorted."""
    return sorted(STEPS)


def make_step(name: str, options: Mapping[str, Any] | None = None) -> FeatureStep:
    """The step called ``name`` configured with ``options``; ``ConfigError`` if it cannot be.

    The error names the step and the option at fault; an unknown name lists the known ones.
    """
    options = dict(options or {})
    if isinstance(options.get("columns"), str):
        options["columns"] = [options["columns"]]
    step: FeatureStep
    if name in STEPS:
        step = _construct(name, STEPS[name], options)
    elif ":" in name or "." in name:
        step = _custom(name, options)
    else:
        close = difflib.get_close_matches(name, list(STEPS), n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise ConfigError(
            f"no feature step named {name!r}{hint}; known: {', '.join(step_names())}, "
            "or a transformer's import path (mypkg.module:MyTransformer)"
        )
    step.check_options()
    return step


def _construct(name: str, factory: type[Any], options: dict[str, Any]) -> Any:
    parameters = inspect.signature(factory).parameters
    accepted = {p for p, spec in parameters.items() if spec.kind is spec.KEYWORD_ONLY}
    takes_any = any(spec.kind is spec.VAR_KEYWORD for spec in parameters.values())
    for option in options:
        if option not in accepted and not takes_any:
            raise ConfigError(
                f"step {name!r} has no option {option!r}; its options: "
                f"{', '.join(sorted(accepted)) or '(none)'}"
            )
    for option, spec in parameters.items():
        if spec.default is spec.empty and spec.kind is spec.KEYWORD_ONLY and option not in options:
            raise ConfigError(f"step {name!r} needs option {option!r}")
    try:
        step = factory(**options)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"step {name!r} cannot be made from its options: {exc}") from exc
    return step


def _custom(path: str, options: dict[str, Any]) -> FeatureStep:
    factory = import_object(
        path,
        what="feature step",
        hint="name a FeatureStep subclass or a transformer class with fit and transform",
    )
    what = f"feature step {path!r}"
    if isinstance(factory, type) and issubclass(factory, FeatureStep):
        step: FeatureStep = _construct(path, factory, options)
        check_copyable(step, what=what)
        return step
    if not (
        callable(getattr(factory, "fit", None)) and callable(getattr(factory, "transform", None))
    ):
        raise ConfigError(
            f"feature step {path!r} is not a transformer: it needs fit and transform methods"
        )
    if isinstance(factory, type):
        check_estimator_class(
            factory, what=what, has="fit and transform", bases="TransformerMixin and BaseEstimator"
        )
    columns = options.pop("columns", None)
    if columns is None:
        raise ConfigError(f"step {path!r} needs option 'columns' (the columns it transforms)")
    try:
        estimator = factory(**options)
    except TypeError as exc:
        raise ConfigError(f"step {path!r} cannot be made from its options: {exc}") from exc
    except Exception as exc:  # its own code refused them (or failed): say whose code it was
        raise ConfigError(
            f"step {path!r} cannot be made from its options: its __init__ raised "
            f"{type(exc).__name__}: {exc}"
        ) from exc
    check_copyable(estimator, what=what)
    return CustomStep(path=path, estimator=estimator, columns=columns)
