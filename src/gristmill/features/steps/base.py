"""The feature step base class: named columns of a DataFrame in, a DataFrame out.

A step follows scikit-learn's conventions: the constructor only stores its keyword options
(so ``sklearn.base.clone`` copies it and it prints as its spec), ``fit`` learns state into
attributes ending in ``_``, ``transform`` applies it. Steps are of three kinds: ``extract``
(new columns from raw ones: date parts, text statistics, expressions), ``transform``
(imputation, scaling, encoding, binning) and ``select`` (rows or columns kept).

Errors: a bad option is a ``ConfigError`` naming the step and the option; a missing column,
no rows, or a failure on the data is a ``DataError`` naming the step and the column, with
the library's exception chained.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, ClassVar, Literal, TypeVar

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, TransformerMixin

from gristmill.errors import ConfigError, DataError, EmptyInputError, GristmillError

StepKind = Literal["extract", "transform", "select"]
T = TypeVar("T")

# What a library raises when the data does not suit it; anything else propagates.
DATA_FAILURES: tuple[type[Exception], ...] = (
    ValueError,
    TypeError,
    ArithmeticError,
    KeyError,
    IndexError,
)


class FeatureStep(TransformerMixin, BaseEstimator):  # type: ignore[misc]
    """One configured step; ``fit`` returns the step itself, ``transform`` a new frame.

    Subclasses set ``step_name`` (the registry name), ``kind``, ``choices`` (allowed values of
    options) and implement ``_fit``/``_transform``; ``_learned`` says what was learned.
    """

    step_name: ClassVar[str] = ""
    kind: ClassVar[StepKind] = "transform"
    choices: ClassVar[Mapping[str, Sequence[object]]] = {}
    reads_rows: ClassVar[bool] = False
    """Whether a row's result depends on other rows (a series step: lags, windows, gaps)."""

    def reads_label(self, label: str | None) -> bool:
        """Whether the step reads the label: only series steps that name it may (a lag of the
        past values of the target); every other step never sees it."""
        return False

    def adds_rows(self) -> bool:
        """Whether the step adds rows (``fill_gaps`` with ``freq``)."""
        return False

    @property
    def display_name(self) -> str:
        """The name errors and descriptions use: the registry name (or import path)."""
        return self.step_name

    def check_options(self) -> None:
        """``ConfigError`` naming the option when an option's value is not allowed."""
        for option, allowed in self.choices.items():
            value = getattr(self, option)
            if value not in allowed:
                raise ConfigError(
                    f"step {self.display_name!r} option {option!r} must be one of "
                    f"{', '.join(map(str, allowed))}; got {value!r}"
                )
        self._check_more()

    def fit(self, frame: pd.DataFrame, y: pd.Series | None = None) -> FeatureStep:
        self.check_options()
        self._fit(self._input(frame), y)
        self.fitted_ = True
        return self

    def transform(self, frame: pd.DataFrame) -> pd.DataFrame:
        if not getattr(self, "fitted_", False):
            raise ConfigError(
                f"step {self.display_name!r} is used before it was fitted; call fit first"
            )
        return self._transform(self._input(frame))

    def describe(self) -> dict[str, Any]:
        """What the step is and learned, as JSON-able data."""
        learned = self._learned() if getattr(self, "fitted_", False) else {}
        return {
            "step": self.display_name,
            "kind": self.kind,
            "options": jsonable(self.get_params(deep=False)),
            "learned": jsonable(learned),
        }

    # -- for subclasses -------------------------------------------------------------------

    def _check_more(self) -> None:
        """Further option checks; raise ``ConfigError``."""

    def _fit(self, frame: pd.DataFrame, y: pd.Series | None) -> None:
        raise NotImplementedError

    def _transform(self, frame: pd.DataFrame) -> pd.DataFrame:
        raise NotImplementedError

    def _learned(self) -> dict[str, Any]:
        return {}

    def _input(self, frame: object) -> pd.DataFrame:
        if not isinstance(frame, pd.DataFrame):
            raise DataError(
                f"step {self.display_name!r} takes a pandas DataFrame, not {type(frame).__name__}"
            )
        if len(frame) == 0:
            raise EmptyInputError(f"step {self.display_name!r} got no rows")
        return frame

    def _require(self, frame: pd.DataFrame, columns: Iterable[str]) -> list[str]:
        """``columns`` as a list; ``DataError`` naming the first one ``frame`` lacks."""
        wanted = list(columns)
        present = set(frame.columns)
        for column in wanted:
            if column not in present:
                raise DataError(
                    f"step {self.display_name!r} needs column {column!r}, which the data does not "
                    f"have; available: {', '.join(map(str, frame.columns))}",
                    column=column,
                )
        return wanted

    def _check_columns_option(self, option: str = "columns") -> None:
        value = getattr(self, option)
        if (
            not isinstance(value, list | tuple)
            or not value
            or not all(isinstance(c, str) for c in value)
        ):
            raise ConfigError(
                f"step {self.display_name!r} option {option!r} must be a non-empty list of column "
                f"names; got {value!r}"
            )
        if len(set(value)) != len(value):
            raise ConfigError(f"step {self.display_name!r} option {option!r} names a column twice")

    def _guard(self, columns: Sequence[str], action: Callable[[], T]) -> T:
        """Run ``action``; a library failure becomes a ``DataError`` naming the columns."""
        try:
            return action()
        except GristmillError:
            raise
        except DATA_FAILURES as exc:
            raise self._failure(columns, exc) from exc

    def _failure(self, columns: Sequence[str], exc: BaseException) -> GristmillError:
        if type(exc).__name__ == "InvalidParameterError":  # scikit-learn's option check
            return ConfigError(f"step {self.display_name!r} has an invalid option: {exc}")
        where = (
            f"column {columns[0]!r}"
            if len(columns) == 1
            else f"columns {', '.join(map(repr, columns))}"
        )
        return DataError(
            f"step {self.display_name!r} failed on {where}: {exc}",
            column=columns[0] if len(columns) == 1 else None,
        )


def merge_columns(
    frame: pd.DataFrame, produced: pd.DataFrame, replaced: Sequence[str], *, step: str
) -> pd.DataFrame:
    """``frame`` with ``replaced`` columns removed, ``produced`` columns put in.

    A produced column that has the name of a replaced one takes its place; other produced
    columns are appended in their order. A produced name clashing with a column the step
    does not replace is a ``DataError``.
    """
    replaced_set = set(replaced)
    for column in produced.columns:
        if column in frame.columns and column not in replaced_set:
            raise DataError(
                f"step {step!r} would create column {column!r}, which exists already; "
                "drop or rename it first",
                column=column,
            )
    parts: dict[str, pd.Series] = {}
    for column in frame.columns:
        if column in produced.columns:
            parts[column] = produced[column]
        elif column not in replaced_set:
            parts[column] = frame[column]
    for column in produced.columns:
        parts.setdefault(column, produced[column])
    # No copy: consolidating the columns into 2-D blocks would copy every column per step.
    result = pd.DataFrame(parts, index=frame.index, copy=False)
    result.columns = list(parts)
    return result


def jsonable(value: Any) -> Any:
    """``value`` with numpy and pandas scalars and arrays turned into plain JSON values.

    NaN and infinities become ``None`` (JSON has no such numbers); tuples become lists.
    """
    if isinstance(value, Mapping):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset | np.ndarray | pd.Index):
        items = sorted(value, key=str) if isinstance(value, set | frozenset) else list(value)
        return [jsonable(v) for v in items]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if value is None or isinstance(value, bool | int | str):
        return value
    if value is pd.NA or value is pd.NaT:
        return None
    return str(value)
