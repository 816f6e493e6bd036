"""Errors on the wire, for the protocols: the parsers raise ``RequestError`` (a
``DataError`` with the status to answer: 400 by default, 413 for too much, 415 for a
content type no route reads), and every route answers an error with the status, message
and headers ``server.http`` decides (``status_of``, ``message_of``, ``error_headers``): one
mapping for every protocol, so a version that cannot be loaded is 503 everywhere and a 500
names the request id to look for in the server's log.
"""

from __future__ import annotations

import json
from typing import Any

import orjson
from starlette.responses import Response

from gristmill.server import json_numbers
from gristmill.server.http import (
    RequestError,
    error_headers,
    message_of,
    status_of,
)

__all__ = [
    "MAX_BYTES",
    "RequestError",
    "error_headers",
    "json_response",
    "load_json",
    "message_of",
    "status_of",
]

JSON = "application/json"
MAX_BYTES = 64 * 1024 * 1024
"""The largest request body by default, as sent and once decompressed (the server passes
``serve.max_body_bytes``)."""


def json_response(
    content: Any, status: int = 200, headers: dict[str, str] | None = None
) -> Response:
    """``content`` as JSON, written by orjson (numpy arrays and scalars included)."""
    body = orjson.dumps(content, option=orjson.OPT_SERIALIZE_NUMPY)
    return Response(body, status_code=status, headers=headers, media_type=JSON)


def load_json(body: bytes, what: str = "the request body", *, blocks: bool = False) -> Any:
    """``body`` parsed; ``RequestError`` saying where the JSON broke. The literals ``NaN``
    and ``Infinity`` (not JSON, but written by Python's encoders) are read too. With
    ``blocks``, a large body's long arrays of numbers come as float64 arrays
    (``json_numbers``)."""
    if not body:
        raise RequestError(f"{what} is empty; send a JSON object")
    try:
        return json_numbers.loads(body) if blocks else orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        problem = exc
    try:  # NaN, Infinity: not JSON, but what Python's and tritonclient's encoders write
        return json.loads(body)
    except ValueError:
        raise RequestError(f"{what} is not valid JSON: {problem}") from None
