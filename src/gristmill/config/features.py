"""The `features:` section of the pipeline spec: validation, feature steps, selection, online."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SerializerFunctionWrapHandler,
    field_validator,
    model_serializer,
    model_validator,
)

from gristmill.errors import ConfigError

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhdw]?)\s*$")
_UNIT_SECONDS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def parse_duration(value: Any) -> float:
    """Seconds from a number or a string like ``90s``, ``15m``, ``12h``, ``1d``, ``2w``."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        seconds = float(value)
    else:
        match = _DURATION.match(str(value))
        if match is None:
            raise ValueError(f"{value!r} is not a duration; write e.g. 90s, 15m, 12h, 1d or 2w")
        seconds = float(match.group(1)) * _UNIT_SECONDS[match.group(2)]
    if seconds <= 0:
        raise ValueError("a duration must be more than 0")
    return seconds


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class ColumnExpectation(_Section):
    """What a column must hold; values outside are anomalies."""

    min: float | None = None
    max: float | None = None
    values: list[Any] | None = Field(None, description="The allowed categories.")
    type: str | None = Field(None, description="Expected Arrow type name, e.g. double, string.")
    max_missing: float | None = Field(None, ge=0, le=1)


class DriftSpec(_Section):
    """Drift of each column against the previous batch of the source or a stored reference."""

    method: Literal["auto", "psi", "ks", "chi2"] = "auto"
    threshold: float | None = Field(
        None, gt=0, description="PSI above it, or a p-value below it (ks, chi2), is drift."
    )
    against: Literal["previous", "reference", "none"] = "previous"
    reference: str | None = Field(None, description="Raw batch id of the reference.")


class ValidationSpec(_Section):
    """Thresholds of the validation run on every input batch before features are computed."""

    on_anomaly: Literal["warn", "stop"] = "warn"
    max_missing: float = Field(0.2, ge=0, le=1, description="Share of missing values allowed.")
    outliers: Literal["iqr", "zscore", "none"] = "iqr"
    outlier_threshold: float = Field(3.0, gt=0, description="IQR multiple or z-score.")
    max_outliers: float = Field(0.05, ge=0, le=1, description="Share of outliers allowed.")
    drift: DriftSpec = DriftSpec()
    expect: dict[str, ColumnExpectation] = Field(default_factory=dict)


class SelectSpec(_Section):
    """Feature selection; scores of every candidate column are recorded."""

    method: Literal["chi2", "mutual_info", "variance", "model", "list"]
    k: int | None = Field(None, ge=1)
    threshold: float | None = None
    columns: list[str] | None = None

    @model_validator(mode="after")
    def _check(self) -> SelectSpec:
        if self.method == "list" and not self.columns:
            raise ValueError("select method 'list' needs 'columns'")
        if (
            self.method in ("chi2", "mutual_info", "model")
            and self.k is None
            and (self.threshold is None)
        ):
            raise ValueError(f"select method {self.method!r} needs 'k' or 'threshold'")
        return self


class OnlineSpec(_Section):
    """Materialization of the newest vector per entity into the online store.

    ``ttl_from`` is the TTL's base: ``event`` counts it from each vector's event time (the
    set's ``timestamp``), ``arrival`` from when its data arrived (the newest input batch's
    ingestion, a streamed record's receipt), for historical data whose events are old."""

    enabled: bool = True
    ttl: float | None = Field(None, description="Seconds, or a duration: 90s, 15m, 12h, 1d.")
    ttl_from: Literal["event", "arrival"] = "event"

    @field_validator("ttl", mode="before")
    @classmethod
    def _duration(cls, value: Any) -> float | None:
        return None if value is None else parse_duration(value)

    @model_serializer(mode="wrap")
    def _stable(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        return _without_defaults(self, handler(self), ("ttl_from",))


def _without_defaults(model: BaseModel, dumped: Any, keys: tuple[str, ...]) -> dict[str, Any]:
    """``dumped`` without the ``keys`` that hold their default: keys added to a section
    later leave the digests (feature set ids) of sections that do not use them unchanged."""
    fields = type(model).model_fields
    out: dict[str, Any] = dict(dumped)
    for key in keys:
        name = fields[key].alias or key
        default = fields[key].get_default(call_default_factory=True)
        if name in out and getattr(model, key) == default:
            out.pop(name)
    return out


def _columns(value: Any) -> Any:
    """One column name or a list of them, as a list."""
    return [value] if isinstance(value, str) else value


@dataclass(frozen=True)
class JoinPlan:
    """How one joined input meets the spine: resolved from ``join`` and ``join.inputs``."""

    source: str
    left_on: tuple[str, ...]
    right_on: tuple[str, ...]
    how: str
    left_timestamp: str | None
    right_timestamp: str | None
    columns: tuple[str, ...] | None
    prefix: str
    tolerance: float | None


_JOIN_EXTRAS = ("left_on", "right_on", "columns", "prefix", "tolerance", "inputs")


class JoinInputSpec(_Section):
    """What ``join`` says of one joined input, over the defaults ``join`` gives them all.

    ``on`` is a key column (or list) of the same name in both; ``left_on``/``right_on`` the
    spine's and this input's when the names differ; ``timestamp`` this input's event-time
    column; ``columns`` what to take from it (default: all but its keys and timestamp),
    named ``prefix`` + column; ``tolerance`` the oldest a row may be, as of the spine
    row's time, to join (older: the row joins as missing)."""

    on: list[str] | None = None
    left_on: list[str] | None = None
    right_on: list[str] | None = None
    timestamp: str | None = None
    how: Literal["asof", "exact"] | None = None
    columns: list[str] | None = None
    prefix: str | None = None
    tolerance: float | None = Field(None, description="A duration: 90s, 15m, 3h, 1d.")

    @model_validator(mode="before")
    @classmethod
    def _yaml_on(cls, value: Any) -> Any:
        if isinstance(value, dict):
            value = dict(value)
            for alias in (True, "key"):
                if alias in value and "on" not in value:
                    value["on"] = value.pop(alias)
        return value

    @field_validator("left_on", "right_on", mode="before")
    @classmethod
    def _key_list(cls, value: Any) -> Any:
        return _columns(value)

    @field_validator("on", mode="before")
    @classmethod
    def _on_list(cls, value: Any) -> Any:
        return _columns(value)

    @field_validator("tolerance", mode="before")
    @classmethod
    def _tolerance(cls, value: Any) -> float | None:
        return None if value is None else parse_duration(value)

    @model_validator(mode="after")
    def _keys_pair(self) -> JoinInputSpec:
        if self.on is not None and (self.left_on is not None or self.right_on is not None):
            raise ValueError("give 'on' (the same name in both) or 'left_on' and 'right_on'")
        if (self.left_on is None) != (self.right_on is None):
            raise ValueError("'left_on' and 'right_on' go together: the spine's key and this one's")
        if self.left_on is not None and len(self.left_on) != len(self.right_on or []):
            raise ValueError(
                f"'left_on' names {len(self.left_on)} column(s) and 'right_on' "
                f"{len(self.right_on or [])}: name one of this input's for each of the spine's"
            )
        for keys in (self.on, self.left_on, self.right_on):
            if keys is not None and not keys:
                raise ValueError("a join key names at least one column")
        return self


class JoinSpec(JoinInputSpec):
    """How several inputs combine: as of ``timestamp`` on key ``on`` (the first is the spine).

    ``key`` is accepted for ``on`` (YAML 1.1 reads a bare ``on:`` as the boolean true, which
    is fixed here too). Every key but ``how`` and ``inputs`` is a default of each joined
    input; ``inputs.<source>`` overrides them for one (``JoinInputSpec``). ``on`` is kept
    as written (a column or a list) so the digests of earlier specs do not change."""

    on: str | list[str] | None = None  # type: ignore[assignment]
    how: Literal["asof", "exact"] = "asof"
    inputs: dict[str, JoinInputSpec] = Field(default_factory=dict)

    @field_validator("on", mode="before")
    @classmethod
    def _on_list(cls, value: Any) -> Any:
        return value

    @model_serializer(mode="wrap")
    def _stable(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        return _without_defaults(self, handler(self), _JOIN_EXTRAS)

    def plan(self, source: str, where: str = "join") -> JoinPlan:
        """How ``source`` joins; ``ConfigError`` naming ``where`` when it has no key."""
        own = self.inputs.get(source, JoinInputSpec())
        path = f"{where}.inputs.{source}" if source in self.inputs else where
        keys = own if (own.on or own.left_on) else self
        same = _columns(keys.on)
        left = list(same or keys.left_on or [])
        right = list(same or keys.right_on or [])
        if not left:
            raise ConfigError(
                f"{path}: no key to join input {source!r} on; give 'on: <column>' (or a "
                "list), or 'left_on' and 'right_on' when the names differ"
            )
        how = own.how or self.how
        setter = own if own.tolerance is not None else self
        if setter.tolerance is not None and how != "asof" and (setter is own or self.how != "asof"):
            raise ConfigError(f"{path}.tolerance: a tolerance needs an as-of join (how: asof)")
        tolerance = setter.tolerance if how == "asof" else None  # an exact input: no age
        columns = own.columns if own.columns is not None else self.columns
        prefix = own.prefix if own.prefix is not None else (self.prefix or "")
        return JoinPlan(
            source=source,
            left_on=tuple(left),
            right_on=tuple(right),
            how=how,
            left_timestamp=self.timestamp,
            right_timestamp=own.timestamp or self.timestamp,
            columns=None if columns is None else tuple(columns),
            prefix=prefix,
            tolerance=tolerance,
        )


class LabelSpec(_Section):
    """The label: a column of the input rows (``name``), or one derived from them by
    ``expr`` (the ``derive`` step's expressions: ``delay > 15``).

    A derived label is computed from the input rows (after the join, before the split and
    any step), the same way wherever rows are labelled — preparation, the gate's re-scoring
    — and never at serving. A row missing any column ``expr`` reads has no label.
    ``missing``: rows without a label are left out of training and evaluation (``drop``,
    counted and reported) or refuse the feature set (``error``). ``inputs``: the columns
    ``expr`` reads hold the answer, so they are no features (``drop``) unless ``keep``.
    """

    name: str = Field(min_length=1)
    expr: str | None = Field(None, description="An expression over input columns.")
    missing: Literal["drop", "error"] = "drop"
    inputs: Literal["drop", "keep"] = "drop"


class FeatureSetSpec(_Section):
    """One feature set, computed from one or more sources by a pipeline of steps."""

    from_: list[str] = Field(alias="from", min_length=1)
    entity: str | None = Field(None, description="Entity key column (for the online store).")
    timestamp: str | None = Field(None, description="Event-time column.")
    label: str | LabelSpec | None = Field(
        None, description="The label column, or {name, expr, missing, inputs}."
    )
    validation: ValidationSpec = ValidationSpec()
    steps: list[dict[str, dict[str, Any]]] = Field(default_factory=list)
    select: SelectSpec | None = None
    online: OnlineSpec | None = None
    join: JoinSpec | None = None

    @field_validator("steps", mode="before")
    @classmethod
    def _one_key_per_step(cls, value: Any) -> Any:
        if isinstance(value, list):
            for index, step in enumerate(value):
                if isinstance(step, str):
                    value[index] = {step: {}}
                elif not isinstance(step, dict) or len(step) != 1:
                    raise ValueError(
                        f"step {index} must be one name with its options, e.g. "
                        "{impute: {columns: [age], strategy: median}}"
                    )
                else:
                    name, options = next(iter(step.items()))
                    value[index] = {name: options or {}}
        return value

    @property
    def label_column(self) -> str | None:
        """The label's column name (given, or the name of the derived label)."""
        return self.label.name if isinstance(self.label, LabelSpec) else self.label

    def label_rule(self) -> LabelSpec | None:
        """The label as a ``LabelSpec``: a ``derive`` step named as the label becomes its
        expression (``label_step`` says which step that is)."""
        if self.label is None:
            return None
        rule = self.label if isinstance(self.label, LabelSpec) else LabelSpec(name=self.label)
        index = self.label_step()
        if index is None:
            return rule
        options = self.steps[index]["derive"]
        return rule.model_copy(update={"expr": options.get("expr")})

    def label_step(self) -> int | None:
        """The index of the ``derive`` step whose output is the label, if there is one."""
        name = self.label_column
        for index, step in enumerate(self.steps):
            options = step.get("derive")
            if name is not None and isinstance(options, dict) and options.get("name") == name:
                return index
        return None

    def adds_rows(self) -> bool:
        """Whether a step adds rows: ``fill_gaps`` with ``freq`` (its rows are then keyed
        by row id)."""
        return any(
            isinstance(step.get("fill_gaps"), dict) and step["fill_gaps"].get("freq")
            for step in self.steps
        )

    def label_source(self) -> str:
        """Where the label's expression is written, for messages."""
        index = self.label_step()
        return "label.expr" if index is None else f"steps[{index}] (derive)"

    @model_validator(mode="after")
    def _one_label_expression(self) -> FeatureSetSpec:
        index = self.label_step()
        if index is not None and isinstance(self.label, LabelSpec) and self.label.expr:
            raise ValueError(
                f"the label {self.label.name!r} is derived twice: by label.expr and by "
                f"steps[{index}] (derive); keep one"
            )
        return self

    @model_validator(mode="after")
    def _online_needs_entity(self) -> FeatureSetSpec:
        if self.online is not None and self.online.enabled and self.entity is None:
            raise ValueError(
                "'online' needs 'entity': name the entity key column so vectors can be looked up"
            )
        return self

    @model_validator(mode="after")
    def _join_needed(self) -> FeatureSetSpec:
        if len(self.from_) > 1 and self.join is None:
            raise ValueError(
                "a feature set from several sources needs 'join: {on: <key>, timestamp: <col>}'"
            )
        if self.join is not None:
            joined = self.from_[1:]
            for source in self.join.inputs:
                if source not in joined:
                    raise ValueError(
                        f"join.inputs.{source}: not a joined input of this set; its joined "
                        f"inputs (from, after the first): {', '.join(joined) or '(none)'}"
                    )
            for source in joined:
                try:
                    self.join.plan(source)
                except ConfigError as exc:
                    raise ValueError(str(exc)) from exc
        return self
