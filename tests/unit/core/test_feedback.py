"""The feedback payload: what ``POST /v1/feedback`` and ``feedback.received`` accept, and
errors that name the field."""

from __future__ import annotations

from typing import Any

import pytest

from gristmill.core.feedback import label_text, parse_feedback
from gristmill.errors import DataError


def test_request_ids_and_entities_are_accepted() -> None:
    body = parse_feedback(
        {
            "model": "churn",
            "outcomes": [
                {"request_id": "a-1", "actual": "yes"},
                {"request_id": "a-1", "row": 3, "actual": 0.5},
                {"entity": 42, "at": "2026-12-01T10:00:00+01:00", "actual": True},
                {"entity": "c7", "actual": 1},
            ],
        }
    )
    first, second, third, fourth = body.outcomes
    assert (first.request_id, first.row, first.actual) == ("a-1", None, "yes")
    assert (second.row, second.actual) == (3, 0.5)
    assert third.entity == 42 and third.actual is True and third.at is not None
    assert third.at.utcoffset() is not None
    assert fourth.at is None and type(fourth.actual) is int
    dumped = body.model_dump(mode="json", exclude_none=True)
    assert parse_feedback(dumped) == body  # what the server publishes reads back the same


@pytest.mark.parametrize(
    ("payload", "field", "says"),
    [
        ([], "outcomes", "JSON object"),
        ({}, "outcomes", "missing"),
        ({"outcomes": []}, "outcomes", "at least 1"),
        ({"outcomes": [{"request_id": "a"}]}, "outcomes[0].actual", "missing"),
        ({"outcomes": [{"request_id": "a", "actual": None}]}, "outcomes[0].actual", "number"),
        ({"outcomes": [{"request_id": "a", "actual": [1]}]}, "outcomes[0].actual", "number"),
        ({"outcomes": [{"request_id": "a", "actual": float("nan")}]}, "outcomes[0].actual",
         "finite"),
        ({"outcomes": [{"actual": 1}]}, "outcomes[0]", "request_id"),
        ({"outcomes": [{"request_id": "a", "entity": "c", "actual": 1}]}, "outcomes[0]", "or by"),
        ({"outcomes": [{"request_id": "a", "row": -1, "actual": 1}]}, "outcomes[0].row",
         "greater than or equal to 0"),
        ({"outcomes": [{"request_id": "a", "at": "2026-12-01T10:00:00Z", "actual": 1}]},
         "outcomes[0]", "at goes with entity"),
        ({"model": "m", "outcomes": [{"entity": "c", "at": "2026-12-01T10:00:00", "actual": 1}]},
         "outcomes[0]", "time zone"),
        ({"outcomes": [{"request_id": "a", "actual": 1}, {"entity": "c", "actual": 1}]},
         "model", "give the model"),
        ({"outcomes": [{"request_id": "a", "actual": 1, "label": 2}]}, "outcomes[0].label",
         "unknown field"),
        ({"model": "no spaces", "outcomes": [{"request_id": "a", "actual": 1}]}, "model", "match"),
        ({"outcomes": [{"request_id": "x" * 129, "actual": 1}]}, "outcomes[0].request_id",
         "at most 128"),
    ],
)  # fmt: skip
def test_bad_feedback_is_refused_naming_the_field(payload: Any, field: str, says: str) -> None:
    with pytest.raises(DataError) as caught:
        parse_feedback(payload, what="the body")
    assert (caught.value.column or "") == field
    assert says in str(caught.value) and str(caught.value).startswith("the body")


@pytest.mark.parametrize(
    ("value", "text"),
    [(1, "1"), (1.0, "1"), ("1", "1"), ("1.0", "1"), (0.5, "0.5"), (True, "True"),
     ("Adelie", "Adelie"), ("nan", "nan"), (-2, "-2")],
)  # fmt: skip
def test_labels_compare_by_value(value: Any, text: str) -> None:
    assert label_text(value) == text
