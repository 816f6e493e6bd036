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
import json
import logging
import os
import secrets
import zlib
from collections.abc import Mapping
from typing import Any, NoReturn

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
        if not counter.in_flight:  # built after requests began (PredictionFirst counts too)
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

    def __init__(
        self, message: str, *, status: int = 400, field: str | None = None, row: int | None = None
    ) -> None:
        super().__init__(message, column=field, row=row)
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

    def init_headers(self, headers: Mapping[str, str] | None = None) -> None:
        """Starlette's headers with less work per answer: the body's length and type, then
        ``headers`` (Starlette's own way when ``headers`` set either of those)."""
        if self.media_type != JSON_TYPE or (headers and any(map(headers.__contains__, _PLAIN))):
            super().init_headers(headers)
            return
        raw = [(b"content-length", b"%d" % len(self.body)), _JSON_HEADER]
        if headers:
            raw += [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in headers.items()]
        self.raw_headers = raw


JSON_TYPE = "application/json"
_JSON_HEADER = (b"content-type", JSON_TYPE.encode())
_PLAIN = ("content-length", "content-type", "Content-Length", "Content-Type")


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
    """The request body, decompressed as its ``Content-Encoding`` says (gzip, deflate; any
    other is a 415), refused with ``TooLargeError`` as soon as it passes ``limit`` as sent,
    or once decompressed (a small body that inflates to gigabytes is never held whole)."""
    declared = header(request, "content-length")
    if declared is not None and declared.isascii() and declared.isdigit() and int(declared) > limit:
        raise TooLargeError(
            f"the request body has {declared} bytes, more than the server takes ({limit}; "
            "serve.max_body_bytes); send fewer rows per request"
        )
    encoding = (header(request, "content-encoding") or "").strip().lower()
    if encoding not in ENCODINGS:
        raise RequestError(
            f"Content-Encoding {encoding!r} is not read here; send gzip, deflate or none",
            status=415,
            field="Content-Encoding",
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
    body = b"".join(chunks)
    return body if encoding in ("", "identity") else inflated(body, encoding, limit)


ENCODINGS = frozenset({"", "identity", "gzip", "deflate"})
"""The ``Content-Encoding``s a request body may come in (every protocol)."""


def inflated(body: bytes, encoding: str, limit: int) -> bytes:
    """``body`` decompressed (``gzip`` or ``deflate``); ``RequestError`` when it is not
    what it says, ``TooLargeError`` as soon as it passes ``limit`` bytes."""
    inflater = zlib.decompressobj(16 + zlib.MAX_WBITS if encoding == "gzip" else 0)
    try:
        data = inflater.decompress(body, limit)
    except zlib.error as exc:
        raise RequestError(f"the {encoding} body cannot be decompressed: {exc}") from None
    if inflater.unconsumed_tail:
        raise TooLargeError(
            f"the request body is larger than {limit} bytes once decompressed (the server's "
            "serve.max_body_bytes); send fewer rows per request"
        )
    if not inflater.eof:
        raise RequestError(f"the {encoding} body ends before its compressed data does")
    return data


async def json_of(
    request: Request, limit: int, *, blocks: bool = False, lists: frozenset[str] = frozenset()
) -> Any:
    """The request body parsed as JSON (``parsed``); ``UnsupportedMediaError`` for another
    content type, ``RequestError`` saying where the JSON is malformed. With ``blocks``, a
    large body's long arrays of numbers come as float64 arrays (``json_numbers``), but
    under ``lists``."""
    kind = (header(request, "content-type") or "application/json").split(";", 1)[0].strip()
    if kind and kind != "application/json" and not kind.endswith("+json"):
        raise UnsupportedMediaError(
            f"content type {kind!r} is not read here; send JSON (Content-Type: application/json)"
        )
    return parsed(await body_of(request, limit), blocks=blocks, lists=lists)


DEPTH = 1024
"""How deeply arrays and objects may nest in a request body (orjson's own limit)."""


def parsed(
    body: bytes,
    what: str = "the request body",
    *,
    blocks: bool = False,
    lists: frozenset[str] = frozenset(),
) -> Any:
    """``body`` as JSON, the same for every protocol; ``RequestError`` (400) saying where
    the JSON broke. The literals ``NaN``, ``Infinity`` and ``-Infinity`` (not JSON, but
    what Python's and tritonclient's encoders write) and numbers too large for a double
    (``1e400``) are read too, so the protocols name the column and row holding them (NaN
    is a missing value, an infinity is refused). A body nested deeper than ``DEPTH``
    levels is refused as such, never parsed by recursion. With ``blocks``, a large body's
    long arrays of numbers come as float64 arrays (``json_numbers``), but under ``lists``."""
    if not body:
        raise RequestError(f"{what} is empty; send a JSON object")
    try:
        return json_numbers.loads(body, lists=lists) if blocks else orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        problem = exc
    if problem.msg.startswith("depth limit"):
        _too_deep(what)
    try:  # NaN, Infinity, 1e400: read by Python's parser, whose C scanner recurses
        return json.loads(body)
    except RecursionError:
        _too_deep(what)
    except ValueError:
        pass
    raise RequestError(f"{what} is not valid JSON: {problem}") from None


def _too_deep(what: str) -> NoReturn:
    raise RequestError(
        f"{what} is nested too deeply: arrays and objects more than {DEPTH} levels inside "
        "one another; send rows or columns of plain values"
    )


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
