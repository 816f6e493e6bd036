"""Extract steps: new columns from dates, from text, and from expressions over columns.

``date_parts`` and ``text_stats`` replace their source columns by default (``keep: true``
keeps them); ``tfidf`` turns a text column into word weights over a learned vocabulary;
``derive`` adds one column computed by a restricted expression.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Callable, Mapping, Sequence
from typing import Any, ClassVar

import numpy as np
import pandas as pd
from sklearn.feature_extraction.text import TfidfVectorizer

from gristmill.errors import ConfigError
from gristmill.features.steps.base import DATA_FAILURES, FeatureStep, merge_columns
from gristmill.features.steps.expressions import Expression

# Part name -> pandas ``.dt`` accessor.
DATE_PARTS = {
    "year": "year",
    "month": "month",
    "day": "day",
    "weekday": "day_of_week",
    "hour": "hour",
    "minute": "minute",
    "dayofyear": "day_of_year",
    "quarter": "quarter",
}


def _count(predicate: Callable[[str], bool]) -> Callable[[str], int]:
    return lambda text: sum(1 for char in text if predicate(char))


TEXT_STATS: dict[str, Callable[[str], int]] = {
    "length": len,
    "words": lambda text: len(text.split()),
    "digits": _count(str.isdigit),
    "upper": _count(str.isupper),
    "punctuation": _count(lambda char: unicodedata.category(char).startswith("P")),
}


class _ColumnsExtract(FeatureStep):
    """An extract step over ``columns`` that makes ``<column>_<part>`` columns from each."""

    kind = "extract"
    outputs_option: ClassVar[str]
    known_outputs: ClassVar[Mapping[str, object]]
    columns: list[str]
    keep: bool

    def _check_more(self) -> None:
        self._check_columns_option()
        chosen = getattr(self, self.outputs_option)
        unknown = [o for o in chosen if o not in self.known_outputs] or (not chosen and ["(none)"])
        if unknown:
            raise ConfigError(
                f"step {self.display_name!r} option {self.outputs_option!r} has {unknown[0]!r}; "
                f"choose from {', '.join(self.known_outputs)}"
            )

    def _fit(self, frame: pd.DataFrame, y: pd.Series | None) -> None:
        self.columns_ = self._require(frame, self.columns)
        self.outputs_ = list(self._produce(frame).columns)

    def _transform(self, frame: pd.DataFrame) -> pd.DataFrame:
        self._require(frame, self.columns_)
        replaced = [] if self.keep else self.columns_
        return merge_columns(frame, self._produce(frame), replaced, step=self.display_name)

    def _produce(self, frame: pd.DataFrame) -> pd.DataFrame:
        parts = {}
        for column in self.columns_:
            for name, values in self._extract(column, frame[column]).items():
                parts[f"{column}_{name}"] = values
        return pd.DataFrame(parts, index=frame.index)

    def _extract(self, column: str, values: pd.Series) -> dict[str, pd.Series]:
        raise NotImplementedError

    def _learned(self) -> dict[str, Any]:
        return {"outputs": self.outputs_}


class DateParts(_ColumnsExtract):
    """Year, month, day, weekday (Monday 0), hour … of a date or timestamp column.

    Text is parsed as ISO 8601 unless ``format`` (a ``strftime`` pattern) is given, so one
    row parses as it does in a batch. Parts are floats; a missing date gives missing parts.
    """

    step_name = "date_parts"
    outputs_option = "parts"
    known_outputs = DATE_PARTS

    def __init__(
        self,
        *,
        columns: list[str],
        parts: Sequence[str] = ("year", "month", "day", "weekday", "hour"),
        format: str | None = None,
        keep: bool = False,
    ) -> None:
        self.columns = columns
        self.parts = parts
        self.format = format
        self.keep = keep

    def _extract(self, column: str, values: pd.Series) -> dict[str, pd.Series]:
        if not pd.api.types.is_datetime64_any_dtype(values):
            values = self._guard(
                [column], lambda: pd.to_datetime(values, format=self.format or "ISO8601")
            )
        return {p: getattr(values.dt, DATE_PARTS[p]).astype(np.float64) for p in self.parts}


class TextStats(_ColumnsExtract):
    """Counts over a text column: ``length``, ``words``, ``digits``, ``upper``, ``punctuation``."""

    step_name = "text_stats"
    outputs_option = "stats"
    known_outputs = TEXT_STATS

    def __init__(
        self,
        *,
        columns: list[str],
        stats: Sequence[str] = ("length", "words", "digits"),
        keep: bool = False,
    ) -> None:
        self.columns = columns
        self.stats = stats
        self.keep = keep

    def _extract(self, column: str, values: pd.Series) -> dict[str, pd.Series]:
        present = values.notna().to_numpy()
        texts = values.to_numpy(dtype=object)
        result = {}
        for stat in self.stats:
            count = TEXT_STATS[stat]
            numbers = [
                float(count(str(t))) if ok else np.nan for t, ok in zip(texts, present, strict=True)
            ]
            result[stat] = pd.Series(numbers, index=values.index, dtype=np.float64)
        return result


class Tfidf(FeatureStep):
    """Word weights of a text column over a vocabulary learned at fit (``<column>__<term>``).

    Missing text counts as empty. ``use_idf: false`` gives (normalized) term frequencies,
    ``binary: true`` presence; at most ``max_features`` terms, the most frequent.
    """

    step_name = "tfidf"
    kind = "extract"

    def __init__(
        self,
        *,
        columns: list[str],
        max_features: int | None = 100,
        min_df: float = 1,
        ngram_range: Sequence[int] = (1, 1),
        lowercase: bool = True,
        use_idf: bool = True,
        binary: bool = False,
        keep: bool = False,
    ) -> None:
        self.columns = columns
        self.max_features = max_features
        self.min_df = min_df
        self.ngram_range = ngram_range
        self.lowercase = lowercase
        self.use_idf = use_idf
        self.binary = binary
        self.keep = keep

    def _check_more(self) -> None:
        self._check_columns_option()
        self._guard(self.columns, lambda: self._vectorizer()._validate_params())

    def _vectorizer(self) -> Any:
        return TfidfVectorizer(
            max_features=self.max_features,
            min_df=self.min_df,
            ngram_range=tuple(self.ngram_range),
            lowercase=self.lowercase,
            use_idf=self.use_idf,
            binary=self.binary,
            dtype=np.float64,
        )

    def _fit(self, frame: pd.DataFrame, y: pd.Series | None) -> None:
        self.columns_ = self._require(frame, self.columns)
        self.vectorizers_ = {c: self._vectorize(c, frame[c], None) for c in self.columns_}

    def _transform(self, frame: pd.DataFrame) -> pd.DataFrame:
        self._require(frame, self.columns_)
        parts = []
        for column, vectorizer in self.vectorizers_.items():
            matrix = self._vectorize(column, frame[column], vectorizer)
            names = [f"{column}__{term}" for term in vectorizer.get_feature_names_out()]
            parts.append(pd.DataFrame(matrix.toarray(), columns=names, index=frame.index))
        produced = pd.concat(parts, axis=1)
        replaced = [] if self.keep else self.columns_
        return merge_columns(frame, produced, replaced, step=self.display_name)

    def _vectorize(self, column: str, values: pd.Series, fitted: Any) -> Any:
        """A vectorizer fitted on ``values`` (``fitted`` is None), or ``fitted``'s matrix."""
        try:
            if fitted is None:
                return self._vectorizer().fit(_texts(values))
            return fitted.transform(_texts(values))
        except DATA_FAILURES as exc:
            raise self._failure([column], exc) from exc

    def _learned(self) -> dict[str, Any]:
        return {
            "vocabulary": {c: list(v.get_feature_names_out()) for c, v in self.vectorizers_.items()}
        }


class Derive(FeatureStep):
    """A new column ``name`` from the expression ``expr`` over other columns.

    ``expr`` allows arithmetic, comparisons and math functions only (see ``expressions``),
    e.g. ``bill_length_mm / bill_depth_mm``. ``replace: true`` lets it overwrite a column.
    """

    step_name = "derive"
    kind = "extract"

    def __init__(self, *, name: str, expr: str, replace: bool = False) -> None:
        self.name = name
        self.expr = expr
        self.replace = replace

    def _check_more(self) -> None:
        if not isinstance(self.name, str) or not self.name:
            raise ConfigError(f"step {self.display_name!r} option 'name' must be a column name")
        Expression.parse(self.expr, step=self.display_name, option="expr")

    def _fit(self, frame: pd.DataFrame, y: pd.Series | None) -> None:
        self.expression_ = Expression.parse(self.expr, step=self.display_name, option="expr")

    def _transform(self, frame: pd.DataFrame) -> pd.DataFrame:
        values = self.expression_.evaluate(frame, step=self.display_name)
        produced = pd.DataFrame({self.name: values}, index=frame.index)
        replaced = [self.name] if self.replace and self.name in frame.columns else []
        return merge_columns(frame, produced, replaced, step=self.display_name)

    def _learned(self) -> dict[str, Any]:
        return {"reads": list(self.expression_.columns)}


def _texts(values: pd.Series) -> list[str]:
    return [
        "" if missing else str(text) for text, missing in zip(values, values.isna(), strict=True)
    ]
