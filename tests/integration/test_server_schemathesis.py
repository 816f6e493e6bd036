"""Bounded fuzzing of the server's own OpenAPI document (schemathesis): every operation it
describes, with bodies, paths and queries drawn from its schemas, answers without a 5xx,
with a status the document lists and a body its schema for that status describes. The app
runs in this process, lifespan and all, over the trained model of test_server.py."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.python import asgi
from schemathesis.specs.openapi.checks import (
    response_schema_conformance,
    status_code_conformance,
)

from gristmill.server.app import create_app

from .test_server import _rows, trained  # noqa: F401  (the module's fixture)

pytestmark = pytest.mark.slow
EXAMPLES = 12
"""Cases per operation: about 25 operations, a few milliseconds each (about 15 s in all)."""
JSON = "application/json"
CHECKS = [not_a_server_error, status_code_conformance, response_schema_conformance]


class _Errors(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.seen: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.seen.append(self.format(record))


@pytest.fixture(scope="module")
def schema(trained: Any) -> Iterator[Any]:  # noqa: F811
    app_settings, _ = trained
    # one model preloaded, so /invocations (which names none) scores it
    serve = app_settings.serve.model_copy(update={"models": ["birds"]})
    app = create_app(app_settings.model_copy(update={"serve": serve}))
    errors = _Errors()
    logging.getLogger("gristmill").addHandler(errors)
    try:
        yield schemathesis.openapi.from_asgi("/openapi.json", app)
    finally:
        asgi.shutdown_lifespans()  # the app's lifespan, started by schemathesis' client
        logging.getLogger("gristmill").removeHandler(errors)
    assert not errors.seen, errors.seen[:3]


def test_every_operation_is_described_with_its_body(schema: Any) -> None:
    operations = [result.ok() for result in schema.get_all_operations()]
    posts = {op.path for op in operations if op.method.upper() == "POST"}
    assert posts >= {
        "/v1/models/{ref}/predict",
        "/v2/models/{name}/infer",
        "/invocations",
        "/admin/reload",
        "/admin/unload",
        "/v1/feedback",
    }
    for op in operations:
        if op.method.upper() == "POST" and op.path != "/admin/reload":
            assert op.body, f"POST {op.path} describes no request body"


def test_no_operation_answers_a_5xx(schema: Any) -> None:
    failures: list[str] = []
    for result in schema.get_all_operations():
        operation = result.ok()

        @settings(
            max_examples=EXAMPLES,
            deadline=None,
            database=None,
            suppress_health_check=list(HealthCheck),
        )
        @given(case=operation.as_strategy())
        def fuzz(case: Any) -> None:
            case.call_and_validate(checks=CHECKS)

        try:
            fuzz()
        except Exception as exc:  # one line per failing operation, all of them reported
            failures.append(f"{operation.method.upper()} {operation.path}: {exc}")
    assert not failures, "\n\n".join(failures)


def test_answers_to_good_requests_match_their_schemas(schema: Any) -> None:
    """Random bodies are mostly refused; these score, so the success schemas are checked."""
    rows = _rows(2)
    cases = [
        schema["/v1/models/{ref}/predict"]["POST"].Case(
            path_parameters={"ref": "birds"}, body={"rows": rows}
        ),
        schema["/v1/models/{name}/versions/{version}/predict"]["POST"].Case(
            path_parameters={"name": "birds", "version": 1},
            body={"columns": {k: [r[k] for r in rows] for k in rows[0]}},
        ),
        schema["/invocations"]["POST"].Case(body={"dataframe_records": rows}, media_type=JSON),
        schema["/invocations"]["POST"].Case(body={"instances": rows}, media_type=JSON),
        schema["/admin/reload"]["POST"].Case(),
        schema["/admin/unload"]["POST"].Case(body={"ref": "birds/1"}),
    ]
    metadata = schema["/v2/models/{name}"]["GET"].Case(path_parameters={"name": "birds"})
    inputs = metadata.call_and_validate(checks=CHECKS).json()["inputs"]
    tensors = [
        {"name": i["name"], "shape": [len(rows)], "datatype": i["datatype"]}
        | {"data": [r.get(i["name"]) for r in rows]}
        for i in inputs
    ]
    cases.append(
        schema["/v2/models/{name}/infer"]["POST"].Case(
            path_parameters={"name": "birds"}, body={"inputs": tensors}
        )
    )
    for case in cases:
        answer = case.call_and_validate(checks=CHECKS)
        assert answer.status_code == 200, (case.path, answer.text)
    feedback = schema["/v1/feedback"]["POST"].Case(
        body={"outcomes": [{"request_id": "r-1", "actual": "Adelie"}]}
    )
    answer = feedback.call_and_validate(checks=CHECKS)
    assert answer.status_code == 202, answer.text
