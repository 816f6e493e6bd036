"""gristmill's own JSON API: ``/v1/models…``, rows or columns of raw values, or entity keys.

::

    POST /v1/models/{name}[@alias]/predict           (default @champion)
    POST /v1/models/{name}/versions/{n}/predict
    GET  /v1/models                                  loaded versions, aliases in use
    GET  /v1/models/{name}[@alias]                   the manifest of the version it names
    GET  /v1/models/{name}/versions/{n}

A predict body holds ``rows`` (a list of objects of raw columns), or ``columns`` (an object
of one list per raw column), or ``entities`` (keys whose features the online store holds;
``columns`` then hold feature values that override the stored ones, one per entity). The
answer: ``model``, ``version``, ``request_id``, ``predictions`` (one per row), and
``probabilities`` with ``classes`` for a classifier; with entities, ``status`` per row
(``found``, ``missing``, ``expired``, ``superseded``: only found rows have a prediction).

A model named alone (no ``@alias``) is answered per its traffic policy; the
``x-gristmill-key`` header, else the first of ``entities``, makes a canary pick sticky.
``version`` (and the ``x-gristmill-model-version`` header) is the version that answered.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from itertools import chain
from operator import itemgetter
from time import perf_counter
from typing import Any, NamedTuple

import numpy as np
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from gristmill.errors import DataError
from gristmill.servables.columns import all_finite, numbers, text_values
from gristmill.servables.loading import parse_ref
from gristmill.servables.port import Predictions, ServableManifest
from gristmill.servables.storage import to_body
from gristmill.server.budget import BUDGET_HEADER
from gristmill.server.http import (
    JSONResponse,
    TooLargeError,
    check_token,
    error_response,
    json_of,
    prediction_token,
    request_id,
    status_of,
)
from gristmill.server.models import RegistryModels
from gristmill.server.openapi import documented, header, operation, parameter
from gristmill.server.port import NumericColumns, Served
from gristmill.server.routing import answer_headers, request_key, with_budget

PROTOCOL = "native"
PREDICT = "Score rows, columns or entities with a model version"
LISTED = "The versions this server process holds, and the aliases requests used"
DESCRIBE = "The servable manifest of a model version: inputs, output, classes, kind"
PREDICT_ERRORS = (400, 401, 404, 413, 415, 503)
REF = parameter("ref", "NAME (its @champion) or NAME@ALIAS")
NAME = parameter("name", "The model's registry name")
VERSION = parameter("version", "The version number", "integer")
BUDGET = header(
    BUDGET_HEADER,
    "Milliseconds the version may take before the next of its traffic policy's chain "
    "answers instead (0: none; default serve.latency_budget_ms)",
    "number",
)

BODY_KEYS = ("rows", "columns", "entities")
LISTS = frozenset({"entities"})  # keys whose numbers stay Python numbers (json_numbers)
NUMERIC = ("float64", "int64", "bool")
PLAIN_NUMBERS = frozenset({float, int})  # what the fast path takes (bool is not int here)
Handler = Callable[[Request], Awaitable[Response]]


def routes(models: RegistryModels) -> list[Route]:
    """The native API's routes over ``models``."""
    settings = models.settings
    token = prediction_token(settings)

    def guarded(
        handler: Callable[[Request, str], Awaitable[Response]], description: dict[str, Any]
    ) -> Handler:
        async def endpoint(request: Request) -> Response:
            rid = request_id(request)
            try:
                return await handler(request, rid)
            except Exception as exc:  # every failure an answer, never a dead connection
                return error_response(exc, rid)

        return documented(endpoint, description)

    async def find(request: Request, key: str | None = None) -> Served:
        params = request.path_params
        if "version" in params:
            return await models.find(params["name"], version=params["version"])
        ref: str = params["ref"]
        if "@" not in ref:  # the model alone: its traffic policy picks the version
            return await models.find(ref, key=key)
        name, which = parse_ref(ref)
        return await models.find(name, alias=str(which))

    async def predict(request: Request, rid: str) -> Response:
        started = perf_counter()
        served = None
        try:
            check_token(request, token)
            payload = await json_of(request, settings.max_body_bytes, blocks=True, lists=LISTS)
            served = await find(request, request_key(request, payload))
            with_budget(served, request, settings.latency_budget_ms)
            return await scored(request, rid, served, payload)
        except Exception as exc:  # counted, whatever its status, then answered
            models.failed(served, status_of(exc), perf_counter() - started)
            raise

    async def scored(request: Request, rid: str, served: Served, payload: Any) -> Response:
        entities, columns = _parsed(payload, served.manifest, settings.max_rows)
        body: dict[str, Any] = {}
        if entities is None:
            answer = await models.predict(served, columns, protocol=PROTOCOL, request_id=rid)
        else:
            scored = await models.predict_entities(
                served, entities, columns, protocol=PROTOCOL, request_id=rid
            )
            answer = scored.predictions
            body["status"] = scored.status
        manifest = served.answering  # the version that answered (a fallback, maybe)
        body = {
            "model": manifest.model,
            "version": manifest.version,
            "request_id": rid,
            "fallback": served.fell_back,
            **body,
        }
        _answer(body, manifest, answer)
        return JSONResponse(body, headers=answer_headers(served, rid))

    async def describe(request: Request, rid: str) -> Response:
        served = await find(request)
        body = {**to_body(served.manifest), "digest": served.manifest.digest}
        return JSONResponse(body, headers={"x-request-id": rid})

    async def listed(request: Request, rid: str) -> Response:
        loaded = [
            {"model": m.model, "version": m.version, "kind": m.kind, "digest": m.digest}
            for m in models.list()
        ]
        return JSONResponse({"models": loaded, "aliases": models.aliases()})

    return [
        Route(
            "/v1/models/{ref}/predict",
            guarded(predict, _scoring(REF)),
            methods=["POST"],
        ),
        Route(
            "/v1/models/{name}/versions/{version:int}/predict",
            guarded(predict, _scoring(NAME, VERSION)),
            methods=["POST"],
        ),
        Route(
            "/v1/models",
            guarded(listed, operation(LISTED, answer={"type": "object"})),
            methods=["GET"],
        ),
        Route(
            "/v1/models/{ref}",
            guarded(describe, _describing(REF)),
            methods=["GET"],
        ),
        Route(
            "/v1/models/{name}/versions/{version:int}",
            guarded(describe, _describing(NAME, VERSION)),
            methods=["GET"],
        ),
    ]


def _scoring(*parameters: dict[str, Any]) -> dict[str, Any]:
    return operation(
        PREDICT,
        parameters=(*parameters, BUDGET),
        body="PredictRequest",
        answer="PredictResponse",
        errors=PREDICT_ERRORS,
    )


def _describing(*parameters: dict[str, Any]) -> dict[str, Any]:
    return operation(
        DESCRIBE, parameters=parameters, answer={"type": "object"}, errors=(400, 404, 503)
    )


def _parsed(
    payload: Any, manifest: ServableManifest, max_rows: int
) -> tuple[list[str] | None, Mapping[str, Any]]:
    """``(entities or None, columns)`` of a predict body; ``DataError`` naming the field."""
    if not isinstance(payload, dict):
        raise DataError(
            "the body must be a JSON object with rows, columns or entities", column="body"
        )
    unknown = [k for k in payload if k not in BODY_KEYS]
    if unknown:
        raise DataError(
            f"unknown field {unknown[0]!r} in the body; it takes: {', '.join(BODY_KEYS)}",
            column=str(unknown[0]),
        )
    if "rows" in payload and "columns" in payload:
        raise DataError("give rows or columns, not both", column="rows")
    for key in BODY_KEYS:
        held = payload.get(key)
        if key != "columns" and isinstance(held, list) and len(held) > max_rows:
            raise TooLargeError(
                f"{key} holds {len(held)} rows, more than the server takes in one request "
                f"({max_rows}; serve.max_rows); split it"
            )
    entities = payload.get("entities")
    if entities is not None:
        entities = _entities(entities)
    if "rows" in payload:
        names = None if entities is not None else list(_plan(manifest).names)
        fast = None if names is None else _numeric_rows(payload["rows"], manifest)
        columns = (
            fast if fast is not None else _numeric(_from_rows(payload["rows"], names), manifest)
        )
    elif "columns" in payload:
        columns = _numeric(_columns(payload["columns"]), manifest)
    elif entities is None:
        raise DataError("the body needs rows, columns or entities", column="rows")
    else:
        columns = {}
    return entities, columns


def _numeric(columns: dict[str, Any], manifest: ServableManifest) -> dict[str, Any]:
    """Input columns checked and typed, once: numbers as float64 arrays (the servable and
    the prediction log then use them without converting again), text checked to be text.
    A value of the wrong kind is a ``DataError`` naming its column and row (``columns``),
    here, before micro-batching joins requests and row numbers would no longer be the
    request's."""
    for column in manifest.inputs:
        values = columns.get(column.name)
        if type(values) is np.ndarray:  # numbers read as a block (json_numbers): finite
            if column.type in NUMERIC:
                continue
            values = columns[column.name] = values.tolist()  # refused below, naming the row
        if not isinstance(values, list):
            continue
        if column.type in NUMERIC:
            plain = _plain(values)
            boolean = column.type == "bool"
            columns[column.name] = (
                plain if plain is not None else numbers(values, column.name, True, booleans=boolean)
            )
        elif column.type == "string":
            text_values(values, column.name, nullable=column.nullable)
    return columns


def _plain(values: list[Any]) -> np.ndarray | None:
    """``values`` as float64 when all are finite ``int``s or ``float``s (the usual case,
    checked by C loops alone), else ``None`` for ``numbers`` to type or refuse them."""
    if not set(map(type, values)) <= PLAIN_NUMBERS:
        return None
    array = np.array(values, dtype=np.float64)
    return array if all_finite(array) else None


class _Plan(NamedTuple):
    """What a manifest's inputs make of a body, decided once per manifest."""

    manifest: ServableManifest
    names: tuple[str, ...]
    getter: Callable[[Any], Any] | None  # the inputs' values of a row, when all are numeric


_PLANS: dict[int, _Plan] = {}


def _plan(manifest: ServableManifest) -> _Plan:
    plan = _PLANS.get(id(manifest))
    if plan is None or plan.manifest is not manifest:
        names = tuple(c.name for c in manifest.inputs)
        numeric = bool(names) and all(c.type in NUMERIC for c in manifest.inputs)
        plan = _Plan(manifest, names, itemgetter(*names) if numeric else None)
        if len(_PLANS) > 1_000:  # versions come and go; never grow without bound
            _PLANS.clear()
        _PLANS[id(manifest)] = plan
    return plan


def _numeric_rows(rows: Any, manifest: ServableManifest) -> NumericColumns | None:
    """The columns of ``rows`` when every input is numeric and every row holds a finite
    number (an ``int`` or ``float``, not a boolean) for each: one float64 matrix filled by
    numpy from each row's values taken at once (``itemgetter``; no Python loop per column
    and row), its rows the columns. ``None`` for anything else (a missing key, a null, a
    text value, a list), which the general path then reads or names."""
    _, names, getter = _plan(manifest)
    if getter is None or not isinstance(rows, list) or not rows:
        return None
    width = len(names)
    try:
        cells = list(map(getter, rows) if width == 1 else chain.from_iterable(map(getter, rows)))
    except (KeyError, TypeError):
        return None
    # numpy would read a boolean as 0/1 and "41.2" as a number: the kinds of value are
    # gathered in C (no Python loop per cell); any other kind goes the general way
    if not set(map(type, cells)) <= PLAIN_NUMBERS:
        return None
    matrix = np.fromiter(cells, dtype=np.float64, count=len(rows) * width)
    if not all_finite(matrix):  # an infinity (or a gap): named the general way
        return None
    return NumericColumns.of_rows(names, matrix.reshape(len(rows), width))


def _entities(value: Any) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(e, str | int) for e in value):
        raise DataError("entities must be a list of keys (strings or numbers)", column="entities")
    return [str(e) for e in value]


def _from_rows(rows: Any, names: list[str] | None) -> dict[str, Any]:
    """One list per column from a list of row objects; ``names`` the columns to take (those
    of the first row when ``None``)."""
    if not isinstance(rows, list) or not all(isinstance(r, dict) for r in rows):
        raise DataError("rows must be a list of objects, one per row", column="rows")
    if not rows:
        return {n: [] for n in names or ()}
    if names is None:
        names = list(rows[0])
    if len(rows) == 1:
        row = rows[0]
        try:
            return {n: [row[n]] for n in names}
        except KeyError:
            pass  # said below, with the column's name
    columns = {}
    for name in names:
        try:
            columns[name] = [row[name] for row in rows]
        except KeyError:
            at = next(i for i, row in enumerate(rows) if name not in row)
            raise DataError(
                f"rows[{at}] has no column {name!r}; every row needs: {', '.join(names)}",
                column=name,
                row=at,
            ) from None
    return columns


def _columns(columns: Any) -> dict[str, Any]:
    if not isinstance(columns, dict):
        raise DataError("columns must be an object of one list per column", column="columns")
    for name, values in columns.items():
        if not isinstance(values, list | np.ndarray):
            raise DataError(
                f"column {name!r} must be a list of values, one per row", column=str(name)
            )
    return columns


def _answer(body: dict[str, Any], manifest: ServableManifest, answer: Predictions) -> None:
    values = answer.values
    body["predictions"] = values.tolist() if values.dtype.kind in "OUS" else values
    if answer.probabilities is not None and manifest.classes is not None:
        body["classes"] = list(manifest.classes)
        body["probabilities"] = answer.probabilities
    if answer.rejected is not None:
        body["rejected"] = answer.rejected
