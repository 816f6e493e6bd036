"""What every route shares: JSON in and out (orjson), errors as JSON, limits, request ids.

HTTP status codes are decided here and nowhere else (``status_of``), for every protocol
(native, Open Inference, MLflow): a ``RequestError`` carries its own (400, 413, 415), a
``NotFoundError`` is 404, a ``DataError`` or ``ConfigError`` 400 (the message names the
field), ``TooLargeError`` 413, ``UnsupportedMediaError`` 415, ``UnauthorizedError`` 401
(answered with ``WWW-Authenticate: Bearer``), ``NotReadyError``, an unreachable backend and
a version that cannot be loaded (``ConflictError``: an artifact whose bytes do not match
their digest) 503. Anything else is a 500 whose body says only that it was unexpected and
the request id to look for in the server's log: no traceback reaches a client.
"""

from __future__ import annotations

import itertools
import logging
import os
import secrets
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Receive, Scope, Send

from gristmill.config.settings import ServeSettings
from gristmill.errors import (
    BackendUnavailableError,
    ConfigError,
    ConflictError,
    DataError,
    GristmillError,
    NotFoundError,
)
from gristmill.server import json_numbers
from gristmill.server.headers import header

logger = logging.getLogger(__name__)

JSON_OPTIONS = orjson.OPT_SERIALIZE_NUMPY | orjson.OPT_NON_STR_KEYS
REQUEST_ID = "x-request-id"

_REQUEST_IDS: dict[str, Any] = {"prefix": os.urandom(8).hex(), "counter": itertools.count(1)}


def _new_process_ids() -> None:
    _REQUEST_IDS.update(prefix=os.urandom(8).hex(), counter=itertools.count(1))


os.register_at_fork(after_in_child=_new_process_ids)


class InFlight:
    """ASGI middleware counting the HTTP requests being handled into ``counter.in_flight``
    (the micro-batcher's: a request alone is scored at once)."""

    def __init__(self, app: ASGIApp, counter: Any) -> None:
        self.app = app
        self.counter = counter
        counter.in_flight = 0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        counter = self.counter
        counter.in_flight += 1
        try:
            await self.app(scope, receive, send)
        finally:
            counter.in_flight -= 1


def new_request_id() -> str:
    """A request id unique across processes and restarts: 16 random hex digits drawn once
    per process (again in a forked child), then a counter — far cheaper than a ULID per
    request."""
    return f"{_REQUEST_IDS['prefix']}-{next(_REQUEST_IDS['counter']):x}"


class TooLargeError(DataError):
    """A request holds more rows or bytes than the server's limits (``serve.max_rows``,
    ``serve.max_body_bytes``)."""


class UnsupportedMediaError(DataError):
    """A request body of a content type the endpoint does not read."""


class RequestError(DataError):
    """The request itself is unusable (malformed body, unknown input, wrong shape or type),
    answered with ``status`` (400 by default, 413 for too much, 415 for a content type no
    route reads). ``field`` names what was wrong (an input tensor, a column, a JSON key)."""

    def __init__(self, message: str, *, status: int = 400, field: str | None = None) -> None:
        super().__init__(message, column=field)
        self.status = status


class UnauthorizedError(GristmillError):
    """A request without the bearer token the server requires, or with another one."""


class NotReadyError(GristmillError):
    """The server cannot answer yet (stores not open, preloaded models still loading)."""


def status_of(exc: BaseException) -> int:
    """The HTTP status of an error (see the module docstring)."""
    if isinstance(exc, RequestError):
        return exc.status
    for kind, status in (
        (TooLargeError, 413),
        (UnsupportedMediaError, 415),
        (NotFoundError, 404),
        (DataError, 400),
        (ConfigError, 400),
        (UnauthorizedError, 401),
        (NotReadyError, 503),
        (BackendUnavailableError, 503),
        (ConflictError, 503),
    ):
        if isinstance(exc, kind):
            return status
    return 500


class JSONResponse(Response):
    """A JSON answer serialized by orjson (numpy arrays directly)."""

    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        return orjson.dumps(content, option=JSON_OPTIONS)


def message_of(exc: BaseException, request_id: str) -> str:
    """What the client reads: the error's own message, or, for a 500, that it was unexpected
    and the request id under which the server logged its traceback."""
    if status_of(exc) == 500:
        logger.error("request %s failed unexpectedly", request_id, exc_info=exc)
        return (
            f"unexpected error ({type(exc).__name__}); see the server log for request {request_id}"
        )
    return str(exc) or type(exc).__name__


def error_headers(exc: BaseException, request_id: str) -> dict[str, str]:
    """The headers of an error answer: the request id, and the auth scheme of a 401."""
    headers = {REQUEST_ID: request_id}
    if isinstance(exc, UnauthorizedError):
        headers["www-authenticate"] = 'Bearer realm="gristmill"'
    return headers


def error_body(exc: BaseException, request_id: str) -> dict[str, Any]:
    """``{"error": message}``, with the field (``column``, ``row``) a ``DataError`` names."""
    body: dict[str, Any] = {"error": message_of(exc, request_id)}
    if isinstance(exc, DataError):
        if exc.column is not None:
            body["field"] = exc.column
        if exc.row is not None:
            body["row"] = exc.row
    return body


def error_response(exc: BaseException, request_id: str = "") -> JSONResponse:
    """The JSON answer to a failed request (the status from ``status_of``)."""
    request_id = request_id or new_request_id()
    headers = error_headers(exc, request_id)
    return JSONResponse(error_body(exc, request_id), status_of(exc), headers=headers)


def request_id(request: Request) -> str:
    """The client's ``X-Request-ID`` (kept when it is short and printable), else a new one."""
    given = header(request, REQUEST_ID)
    if given and len(given) <= 128 and given.isprintable():
        return given
    return new_request_id()


async def body_of(request: Request, limit: int) -> bytes:
    """The request body, refused with ``TooLargeError`` as soon as it passes ``limit``."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isascii() and declared.isdigit() and int(declared) > limit:
        raise TooLargeError(
            f"the request body has {declared} bytes, more than the server takes ({limit}; "
            "serve.max_body_bytes); send fewer rows per request"
        )
    chunks = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise TooLargeError(
                f"the request body is larger than the server takes ({limit} bytes; "
                "serve.max_body_bytes); send fewer rows per request"
            )
        chunks.append(chunk)
    return b"".join(chunks)


async def json_of(
    request: Request, limit: int, *, blocks: bool = False, lists: frozenset[str] = frozenset()
) -> Any:
    """The request body parsed as JSON; ``UnsupportedMediaError`` for another content type,
    ``DataError`` saying where the JSON is malformed. With ``blocks``, a large body's long
    arrays of numbers come as float64 arrays (``json_numbers``), but under ``lists``."""
    kind = request.headers.get("content-type", "application/json").split(";", 1)[0].strip()
    if kind and kind != "application/json" and not kind.endswith("+json"):
        raise UnsupportedMediaError(
            f"content type {kind!r} is not read here; send JSON (Content-Type: application/json)"
        )
    body = await body_of(request, limit)
    try:
        return json_numbers.loads(body, lists=lists) if blocks else orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise DataError(f"the request body is not valid JSON: {exc}") from exc


def prediction_token(settings: ServeSettings) -> str | None:
    """The token every prediction endpoint (of every protocol) and ``/v1/jobs`` require:
    ``serve.token`` when ``serve.token_for_predictions``, else none."""
    return settings.token if settings.token_for_predictions else None


def check_token(request: Request, token: str | None) -> None:
    """``UnauthorizedError`` unless the request carries ``Authorization: Bearer <token>``
    (nothing is checked when no token is set); its message says whether the token was
    missing or wrong."""
    if token is None:
        return
    given = request.headers.get("authorization", "").strip()
    if not given:
        raise UnauthorizedError(
            "this endpoint needs the server's token and the request has none: send "
            "Authorization: Bearer <serve.token>"
        )
    scheme, _, value = given.partition(" ")
    if scheme.lower() != "bearer":  # never echoed: it may be the token itself
        raise UnauthorizedError(
            "the Authorization header is not a bearer token; send "
            "Authorization: Bearer <serve.token>"
        )
    if not secrets.compare_digest(value.strip().encode(), token.encode()):
        raise UnauthorizedError(
            "the bearer token is wrong: it is not the server's serve.token; send "
            "Authorization: Bearer <serve.token>"
        )
