"""Errors on the wire, for the protocols: the parsers raise ``RequestError`` (a
``DataError`` with the status to answer: 400 by default, 413 for too much, 415 for a
content type no route reads), and every route answers an error with the status, message
and headers ``server.http`` decides (``status_of``, ``message_of``, ``error_headers``): one
mapping for every protocol, so a version that cannot be loaded is 503 everywhere and a 500
names the request id to look for in the server's log.
"""

from __future__ import annotations

from typing import Any

import orjson
from starlette.responses import Response

from gristmill.server.http import (
    RequestError,
    error_headers,
    message_of,
    parsed,
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
    """``body`` parsed as every protocol parses JSON (``server.http.parsed``: NaN and
    infinities read, so that the column and row holding one are named; a body nested too
    deeply refused); ``RequestError`` saying where the JSON broke. With ``blocks``, a large
    body's long arrays of numbers come as float64 arrays (``json_numbers``)."""
    return parsed(body, what, blocks=blocks)
