"""The feedback payload: actual outcomes of served predictions, as ``POST /v1/feedback`` takes
them and as a ``feedback.received`` event carries them (the same JSON).

::

    {"model": "churn",                                   # optional for request ids
     "outcomes": [
        {"request_id": "4f1c…-1a", "row": 0, "actual": 1},   # row: 0 unless the request
                                                             # scored several rows
        {"entity": "c042", "at": "2026-12-01T10:00:00Z", "actual": 0}
     ]}

An outcome names its prediction either by the request id the server answered with (and
the row of that request), or by an entity key and a time (the entity's nearest prediction
at or before ``at``; ``at`` defaults to when the feedback was received) — entity outcomes
need ``model``. ``actual`` is a JSON number, text or boolean. Anything else is refused with
a ``DataError`` naming the field (``outcomes[2].actual``).
"""

from __future__ import annotations

import math
from datetime import datetime
from typing import Any

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from gristmill.core.names import NAME_PATTERN
from gristmill.errors import DataError

MAX_REQUEST_ID = 128  # the server keeps a client's X-Request-ID up to this length


class OutcomeItem(BaseModel):
    """One actual outcome and the prediction it belongs to."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    request_id: str | None = Field(None, min_length=1, max_length=MAX_REQUEST_ID)
    row: int | None = Field(None, ge=0)
    entity: str | int | None = None
    at: datetime | None = None
    actual: bool | int | float | str

    @field_validator("actual")
    @classmethod
    def _finite(cls, value: bool | int | float | str) -> bool | int | float | str:
        if isinstance(value, float) and not math.isfinite(value):
            raise ValueError("must be a finite number (not NaN or infinity)")
        return value

    @model_validator(mode="after")
    def _one_way_to_name_it(self) -> OutcomeItem:
        if (self.request_id is None) == (self.entity is None):
            raise ValueError("name the prediction by request_id (and row) or by entity (and at)")
        if self.entity is not None and self.row is not None:
            raise ValueError("row goes with request_id; an entity outcome names its time (at)")
        if self.request_id is not None and self.at is not None:
            raise ValueError("at goes with entity; a request id names its prediction already")
        if self.at is not None and self.at.utcoffset() is None:
            raise ValueError("at needs a time zone, e.g. 2026-12-01T10:00:00Z")
        return self


class FeedbackBody(BaseModel):
    """A batch of outcomes, optionally all of one model."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    model: str | None = Field(None, pattern=NAME_PATTERN)
    outcomes: list[OutcomeItem] = Field(min_length=1)

    @model_validator(mode="after")
    def _entities_need_a_model(self) -> FeedbackBody:
        if self.model is None:
            for index, item in enumerate(self.outcomes):
                if item.entity is not None:
                    raise ValueError(
                        f"outcomes[{index}] names an entity: give the model too "
                        '({"model": "NAME", "outcomes": [...]})'
                    )
        return self


def parse_feedback(payload: Any, *, what: str = "the feedback") -> FeedbackBody:
    """``payload`` checked as a feedback body; ``DataError`` naming the first bad field."""
    if not isinstance(payload, dict):
        raise DataError(
            f'{what} must be a JSON object: {{"model"?: NAME, "outcomes": [{{"request_id": ID, '
            '"actual": VALUE}, ...]}',
            column="outcomes",
        )
    try:
        return FeedbackBody.model_validate(payload)
    except ValidationError as exc:
        error = exc.errors()[0]
        field = _path(error["loc"])
        message = str(error["msg"]).removeprefix("Value error, ")
        if not field and message.startswith("outcomes["):  # an entity without a model
            field = "model"
        if field.endswith(".actual") and error["loc"][-1] != "actual":  # no branch of the union
            message = "must be a number, text or true/false (not null, a list or an object)"
        elif field.endswith(".entity") and error["loc"][-1] != "entity":
            message = "must be an entity key: text or a whole number"
        elif error["type"] == "extra_forbidden":
            message = "unknown field; an outcome takes request_id, row, entity, at, actual"
            if len(error["loc"]) == 1:
                message = "unknown field; the body takes model and outcomes"
        elif error["type"] == "missing":
            message = "missing"
        where = f"{field}: " if field else ""
        raise DataError(f"{what} is invalid: {where}{message}", column=field or None) from exc


def _path(loc: tuple[Any, ...]) -> str:
    """``("outcomes", 2, "actual")`` as ``outcomes[2].actual``; pydantic's union branch names
    (``str``, ``int``…) left out."""
    text = ""
    for part in loc:
        if isinstance(part, int):
            text += f"[{part}]"
        elif part in ("bool", "int", "float", "str", "datetime"):
            continue
        else:
            text += f".{part}" if text else str(part)
    return text


def label_text(value: Any) -> str:
    """A class label as text, the same whichever JSON type carried it: a number by its value
    (``1``, ``1.0`` and ``"1.0"`` are ``"1"``; ``0.5`` is ``"0.5"``), ``True`` as ``"True"``
    (as a class named by Python's ``str``), other text as it is."""
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if math.isfinite(value) and value.is_integer():
            return str(int(value))
        return repr(value)
    text = str(value)
    try:
        number = float(text)
    except ValueError:
        return text
    return label_text(number) if math.isfinite(number) else text
