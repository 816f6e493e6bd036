"""Bounded fuzzing of the prediction endpoints: whatever body or model name arrives, the
answer is JSON and never a 5xx (hypothesis; the trained model of test_server.py)."""

from __future__ import annotations

import json
import logging
import warnings
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

with warnings.catch_warnings():  # starlette's TestClient prefers httpx2 to httpx, says so
    warnings.simplefilter("ignore")
    from starlette.testclient import TestClient

from gristmill.server.app import create_app

from .test_server import NUMBERS, trained  # noqa: F401  (the module's fixture)

pytestmark = pytest.mark.slow
COLUMNS = [*NUMBERS, "island", "sex", "penguin_id", "year"]
scalars = st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8)
values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner),
    max_leaves=6,
)
rows = st.lists(st.dictionaries(st.sampled_from(COLUMNS), values, max_size=9), max_size=4)
bodies = st.one_of(
    values,
    st.fixed_dictionaries({"rows": rows}),
    st.fixed_dictionaries({"columns": st.dictionaries(st.sampled_from(COLUMNS), values)}),
    st.fixed_dictionaries({"entities": values}),
    st.fixed_dictionaries(
        {"entities": st.lists(st.text(max_size=6), max_size=3), "columns": values}
    ),
)
refs = st.sampled_from(
    ["birds", "birds@champion", "birds@x", "fish", "birds@", "@", "birds%2F1", "b%00"]
)


class _Errors(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.seen: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.seen.append(self.format(record))


@pytest.fixture(scope="module")
def client(trained: Any) -> Any:  # noqa: F811
    app_settings, _ = trained
    errors = _Errors()
    logging.getLogger("gristmill").addHandler(errors)
    try:
        with TestClient(create_app(app_settings), raise_server_exceptions=False) as test_client:
            yield test_client
    finally:
        logging.getLogger("gristmill").removeHandler(errors)
    # nothing went wrong behind the answers either (the prediction log among others)
    assert not errors.seen, errors.seen[:3]


@settings(
    max_examples=300,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(ref=refs, body=bodies, version=st.integers(-2, 5), numbered=st.booleans())
def test_no_body_or_name_gets_a_5xx(
    client: Any, ref: str, body: Any, version: int, numbered: bool
) -> None:
    path = (
        f"/v1/models/birds/versions/{version}/predict" if numbered else f"/v1/models/{ref}/predict"
    )
    content = json.dumps(body).encode()  # NaN, huge integers and all
    answer = client.post(path, content=content, headers={"content-type": "application/json"})
    assert answer.status_code < 500, (path, body, answer.text)
    assert isinstance(answer.json(), dict)
