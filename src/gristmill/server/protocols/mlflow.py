"""The MLflow scoring protocol (what ``mlflow models serve`` answers), so clients and
deployment tools written for MLflow score a gristmill model unchanged.

Endpoints::

    GET  /ping | /health       200 when the server can answer, else 503
    GET  /version              the gristmill version, as text
    POST /invocations          {"predictions": [...]}, one value per row

``/invocations`` reads ``application/json`` with exactly one of ``dataframe_split``
(``{"columns": [...], "data": [[...], ...]}``), ``dataframe_records`` (``[{column: value},
...]``), ``instances`` (rows as objects, or as lists in the model's column order) or
``inputs`` (``{column: [values]}``, or rows as ``instances``), and ``text/csv`` with a
header row. A classifier answers its class per row; a regressor its number; a row a filter
step rejected, ``null``.

Which model: ``?model=churn`` (also ``churn@challenger``, ``churn/3``), else the ``default``
the routes were given, else the one model the server holds. A model named alone is answered
per its traffic policy (``x-gristmill-key`` makes a canary pick sticky); the version that
answered is in the ``x-gristmill-model-version`` header. With ``serve.token`` and
``serve.token_for_predictions`` set, ``/invocations`` needs ``Authorization: Bearer``.
Errors are MLflow's bodies with the status ``server.http`` gives every protocol:
``{"error_code": "BAD_REQUEST", "message": "..."}`` with 400 (413 for more rows than
``serve.max_rows``, 415 for another content type), ``UNAUTHENTICATED`` with 401,
``RESOURCE_DOES_NOT_EXIST`` with 404, ``TEMPORARILY_UNAVAILABLE`` with 503 (not ready; a
version that cannot be loaded), ``INTERNAL_ERROR`` with 500 (naming the request id).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from time import perf_counter
from typing import Any

import numpy as np
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from gristmill import __version__
from gristmill.servables import ServableManifest, parse_ref
from gristmill.server.http import body_of, check_token, request_id
from gristmill.server.port import Served, ServedModels
from gristmill.server.protocols.errors import (
    MAX_BYTES,
    RequestError,
    error_headers,
    json_response,
    load_json,
    message_of,
    status_of,
)
from gristmill.server.protocols.frames import (
    Columns,
    from_columns,
    from_csv,
    from_records,
    from_rows,
)
from gristmill.server.routing import answer_headers, request_key, with_budget

PROTOCOL = "mlflow"
FIELDS = ("dataframe_split", "dataframe_records", "instances", "inputs")
CONTENT_TYPES = ("application/json", "text/csv")

Handler = Callable[[Request], Awaitable[Response]]
Answering = Callable[[Request, str], Awaitable[Response]]


def routes(
    models: ServedModels,
    *,
    default: str | None = None,
    token: str | None = None,
    max_bytes: int = MAX_BYTES,
    budget_ms: float | None = None,
) -> list[Route]:
    """The protocol's routes over ``models``; ``default`` names the model ``/invocations``
    scores when the request names none (``churn``, ``churn@alias``, ``churn/3``); ``token``,
    when given, is the bearer token ``/invocations`` needs; a body over ``max_bytes`` is
    refused (413); ``budget_ms``, the latency budget of a request that sets none."""
    api = _Scoring(models, default, token, max_bytes)
    api.budget_ms = budget_ms
    return [
        Route("/ping", _answering(api.ping), methods=["GET"]),
        Route("/health", _answering(api.ping), methods=["GET"]),
        Route("/version", _answering(api.version), methods=["GET"]),
        Route("/invocations", _answering(api.invocations), methods=["POST"]),
    ]


def _answering(handler: Answering) -> Handler:
    """``handler`` given the request's id, with every error answered as MLflow answers one
    (the status and headers from ``server.http``)."""

    async def answer(request: Request) -> Response:
        rid = request_id(request)
        try:
            return await handler(request, rid)
        except Exception as exc:
            status = status_of(exc)
            body = {"error_code": _code(status), "message": message_of(exc, rid)}
            return json_response(body, status, headers=error_headers(exc, rid))

    answer.__name__ = handler.__name__
    answer.__doc__ = handler.__doc__
    return answer


def _code(status: int) -> str:
    codes = {401: "UNAUTHENTICATED", 404: "RESOURCE_DOES_NOT_EXIST", 503: "TEMPORARILY_UNAVAILABLE"}
    return codes.get(status, "INTERNAL_ERROR" if status >= 500 else "BAD_REQUEST")


class _Scoring:
    def __init__(
        self, models: ServedModels, default: str | None, token: str | None, max_bytes: int
    ) -> None:
        self.models = models
        self.default = default
        self.token = token
        self.max_bytes = max_bytes
        self.budget_ms: float | None = None

    async def ping(self, request: Request, rid: str) -> Response:
        """200 when the server can answer, else 503."""
        return PlainTextResponse("\n", status_code=200 if self.models.ready() else 503)

    async def version(self, request: Request, rid: str) -> Response:
        """The server's version."""
        return PlainTextResponse(__version__)

    async def invocations(self, request: Request, rid: str) -> Response:
        """Score a table sent as JSON or CSV; one prediction per row."""
        started = perf_counter()
        served = None
        try:
            check_token(request, self.token)
            served = with_budget(await self._find(request), request, self.budget_ms)
            return await self._scored(request, served, rid)
        except Exception as exc:  # counted, whatever its status, then answered
            self.models.failed(served, status_of(exc), perf_counter() - started)
            raise

    async def _scored(self, request: Request, served: Served, request_id: str) -> Response:
        media = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
        if media not in CONTENT_TYPES:
            shown = request.headers.get("content-type", "none")
            raise RequestError(
                "this predictor only supports the following content types: "
                f"{', '.join(CONTENT_TYPES)}; got {shown!r}",
                status=415,
            )
        body = await body_of(request, self.max_bytes)
        manifest = served.manifest
        if media == "text/csv":
            columns = from_csv(body, manifest)
        else:
            columns = _from_json(load_json(body), manifest)
        predictions = await self.models.predict(
            served, columns, protocol=PROTOCOL, request_id=request_id
        )
        values = predictions.values
        data: Any = values if values.dtype.kind in "fiub" else values.tolist()
        if isinstance(data, np.ndarray):
            data = np.ascontiguousarray(data)
        headers = answer_headers(served, request_id)  # the version that answered
        return json_response({"predictions": data}, headers=headers)

    async def _find(self, request: Request) -> Served:
        ref = request.query_params.get("model") or self.default
        if not ref:
            names = sorted({m.model for m in self.models.list()})
            if len(names) != 1:
                held = f"it holds: {', '.join(names)}" if names else "it has loaded none yet"
                raise RequestError(
                    "name the model to score: POST /invocations?model=NAME (or NAME@alias, "
                    f"NAME/version); this server serves more than one model and {held}",
                    field="model",
                )
            ref = names[0]
        if "@" not in ref and "/" not in ref:  # the model alone: its traffic policy
            return await self.models.find(ref, key=request_key(request))
        model, which = parse_ref(ref)
        if isinstance(which, int):
            return await self.models.find(model, version=which)
        return await self.models.find(model, alias=which)


def _from_json(payload: Any, manifest: ServableManifest) -> Columns:
    """The columns of an MLflow JSON payload (see the module docstring)."""
    fields = [f for f in FIELDS if isinstance(payload, dict) and f in payload]
    if len(fields) != 1:
        got = sorted(payload) if isinstance(payload, dict) else type(payload).__name__
        raise RequestError(
            "invalid input: the JSON body must be an object with exactly one of the fields "
            f"{', '.join(FIELDS)}; it has {got}"
        )
    field = fields[0]
    value = payload[field]
    if field == "dataframe_split":
        return _from_split(value, manifest)
    if field == "dataframe_records":
        if not isinstance(value, list):
            raise RequestError("dataframe_records must be a list of rows", field=field)
        return from_records(value, manifest, field)
    if isinstance(value, dict):
        return from_columns(value, manifest)
    if not isinstance(value, list):
        raise RequestError(
            f"{field} must be a list of rows or an object of column: values", field=field
        )
    if value and all(isinstance(row, dict) for row in value):
        return from_records(value, manifest, field)
    names = [c.name for c in manifest.inputs]
    if len(names) == 1 and not any(isinstance(row, list | dict) for row in value):
        return from_columns({names[0]: value}, manifest)
    return from_rows(value, names, manifest, field)


def _from_split(value: Any, manifest: ServableManifest) -> Columns:
    if not isinstance(value, dict) or not isinstance(value.get("data"), list):
        raise RequestError(
            'dataframe_split must be {"columns": [...], "data": [[...], ...]}',
            field="dataframe_split",
        )
    names = value.get("columns")
    if names is None:
        names = [c.name for c in manifest.inputs]
    if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
        raise RequestError(
            "dataframe_split.columns must be a list of column names",
            field="dataframe_split.columns",
        )
    return from_rows(value["data"], names, manifest, "dataframe_split.data")
