"""Errors on the wire: what a request did wrong, and which HTTP status says so.

Parsers raise ``RequestError`` (a ``DataError``, with the status to answer: 400 by default,
413 for too much, 415 for a content type no route reads). The routes turn every error into
their protocol's body with ``status_of``:

* ``RequestError`` → its own status;
* ``NotFoundError`` (no such model, version or alias) → 404;
* ``DataError`` (a missing, mistyped or missing-valued column, from the parser or the
  servable), ``ConfigError`` (a malformed model reference) → 400;
* anything else is the server's fault → 500, logged with its traceback, never a dead worker.
"""

from __future__ import annotations

import json
import logging
from typing import Any

import orjson
from starlette.responses import Response

from gristmill.errors import ConfigError, DataError, NotFoundError

log = logging.getLogger(__name__)

JSON = "application/json"


class RequestError(DataError):
    """The request itself is unusable: malformed body, unknown input, wrong shape or type.

    ``field`` names what was wrong (an input tensor, a column, a JSON key) when one was.
    """

    def __init__(self, message: str, *, status: int = 400, field: str | None = None) -> None:
        super().__init__(message, column=field)
        self.status = status


def status_of(exc: BaseException) -> int:
    """The HTTP status that answers ``exc`` (see the module docstring)."""
    if isinstance(exc, RequestError):
        return exc.status
    if isinstance(exc, NotFoundError):
        return 404
    if isinstance(exc, DataError | ConfigError):
        return 400
    return 500


def message_of(exc: BaseException, status: int) -> str:
    """What the client reads: the error's own message, or a generic one for a 500 (logged)."""
    if status >= 500:
        log.error("a request failed inside the server", exc_info=exc)
        return f"internal error ({type(exc).__name__}); the server log has the details"
    return str(exc) or type(exc).__name__


def json_response(
    content: Any, status: int = 200, headers: dict[str, str] | None = None
) -> Response:
    """``content`` as JSON, written by orjson (numpy arrays and scalars included)."""
    body = orjson.dumps(content, option=orjson.OPT_SERIALIZE_NUMPY)
    return Response(body, status_code=status, headers=headers, media_type=JSON)


def load_json(body: bytes, what: str = "the request body") -> Any:
    """``body`` parsed; ``RequestError`` saying where the JSON broke. The literals ``NaN``
    and ``Infinity`` (not JSON, but written by Python's encoders) are read too."""
    if not body:
        raise RequestError(f"{what} is empty; send a JSON object")
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        problem = exc
    try:  # NaN, Infinity: not JSON, but what Python's and tritonclient's encoders write
        return json.loads(body)
    except ValueError:
        raise RequestError(f"{what} is not valid JSON: {problem}") from None
