"""The Open Inference Protocol v2 over REST (KServe's V2, Triton's HTTP API), with the binary
tensor data extension, so ``tritonclient.http.InferenceServerClient`` works unchanged.

Endpoints::

    GET  /v2                                          server metadata
    GET  /v2/health/live | /v2/health/ready           200 when live / ready, else 400
    GET  /v2/models/{name}[/versions/{v}]             model metadata
    GET  /v2/models/{name}[/versions/{v}]/ready       200 when it can be served
    POST /v2/models/{name}[/versions/{v}]/infer       inference

``{name}`` is a registered model (answered per its traffic policy, else ``@champion``;
the ``x-gristmill-key`` header makes a canary pick sticky) or ``name@alias``; ``{v}`` a
version number (or an alias). Inputs are the manifest's raw columns, one tensor each
(``tensors``); outputs ``predict`` (class, number, cluster id) and, for a classifier with
probabilities, ``predict_proba`` (rows by classes, in the order of the metadata's
``classes``). Errors are ``{"error": "..."}`` with the status ``server.http`` gives every
protocol: 400 (bad request), 401 (``serve.token`` and ``serve.token_for_predictions`` set,
and ``/infer`` asked without it), 404 (no such model, version or alias), 413 (body too
large once decompressed), 415, 503 (not ready; a version that cannot be loaded) or 500
(naming the request id).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from time import perf_counter
from typing import Any, NoReturn

import numpy as np
import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from gristmill import __version__
from gristmill.servables import ServableManifest
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
from gristmill.server.protocols.tensors import (
    DATATYPES,
    PROBA,
    REJECTED,
    Output,
    Tensor,
    binary_data,
    from_binary,
    from_json,
    json_data,
    output_names,
    outputs_of,
    parse_tensor,
    value_datatype,
)
from gristmill.server.routing import answer_headers, request_key, with_budget

PROTOCOL = "oip"
HEADER_LENGTH = "inference-header-content-length"

Handler = Callable[[Request], Awaitable[Response]]
Answering = Callable[[Request, str], Awaitable[Response]]


def routes(
    models: ServedModels,
    *,
    max_bytes: int = MAX_BYTES,
    token: str | None = None,
    budget_ms: float | None = None,
) -> list[Route]:
    """The protocol's routes over ``models``; ``token``, when given, is the bearer token
    every inference request must carry (metadata and health stay open); ``budget_ms``, the
    latency budget of a request that sets none."""
    api = _OpenInference(models, max_bytes, token)
    api.budget_ms = budget_ms
    get, post = ["GET"], ["POST"]
    model = "/v2/models/{name}"
    version = "/v2/models/{name}/versions/{version}"
    return [
        Route("/v2", _answering(api.server_metadata), methods=get),
        Route("/v2/health/live", _answering(api.live), methods=get),
        Route("/v2/health/ready", _answering(api.ready), methods=get),
        Route(model, _answering(api.metadata), methods=get),
        Route(version, _answering(api.metadata), methods=get),
        Route(f"{model}/ready", _answering(api.model_ready), methods=get),
        Route(f"{version}/ready", _answering(api.model_ready), methods=get),
        Route(f"{model}/infer", _answering(api.infer), methods=post),
        Route(f"{version}/infer", _answering(api.infer), methods=post),
    ]


def _answering(handler: Answering) -> Handler:
    """``handler`` given the request's id, with every error answered as ``{"error": ...}``
    and the status and headers ``server.http`` decides."""

    async def answer(request: Request) -> Response:
        rid = request_id(request)
        try:
            return await handler(request, rid)
        except Exception as exc:
            body = {"error": message_of(exc, rid)}
            return json_response(body, status_of(exc), headers=error_headers(exc, rid))

    answer.__name__ = handler.__name__
    answer.__doc__ = handler.__doc__
    return answer


BODY_TYPES = frozenset({"application/json", "application/octet-stream"})
"""What an inference request may be sent as (or with no content type at all)."""


class _OpenInference:
    def __init__(self, models: ServedModels, max_bytes: int, token: str | None) -> None:
        self.models = models
        self.max_bytes = max_bytes
        self.token = token
        self.budget_ms: float | None = None

    async def server_metadata(self, request: Request, rid: str) -> Response:
        """The server's name, version and protocol extensions."""
        return json_response(
            {"name": "gristmill", "version": __version__, "extensions": ["binary_tensor_data"]}
        )

    async def live(self, request: Request, rid: str) -> Response:
        """200 while the server process answers."""
        return json_response({"live": True})

    async def ready(self, request: Request, rid: str) -> Response:
        """200 when the server can answer inference requests, else 400."""
        if self.models.ready():
            return json_response({"ready": True})
        return json_response({"error": "the server is not ready to serve models yet"}, 400)

    async def metadata(self, request: Request, rid: str) -> Response:
        """The model's inputs (raw columns) and outputs, as tensors."""
        served = await self._find(request)
        return json_response(self._metadata(served.manifest))

    async def model_ready(self, request: Request, rid: str) -> Response:
        """200 when the model (version, alias) is loaded and can answer; 404 when none."""
        served = await self._find(request)
        manifest = served.manifest
        return json_response(
            {"name": manifest.model, "version": str(manifest.version), "ready": True}
        )

    async def infer(self, request: Request, rid: str) -> Response:
        """Score the request's input tensors; answer the asked outputs, JSON or binary."""
        started = perf_counter()
        served = None
        try:
            check_token(request, self.token)
            served = with_budget(await self._find(request), request, self.budget_ms)
            return await self._infer(request, served, rid)
        except Exception as exc:  # counted, whatever its status, then answered
            self.models.failed(served, status_of(exc), perf_counter() - started)
            raise

    async def _infer(self, request: Request, served: Served, request_id: str) -> Response:
        manifest = served.manifest
        body = await self._body(request)
        header, binary = _split(body, request.headers.get(HEADER_LENGTH))
        payload = load_json(header, "the inference request", blocks=True)
        if not isinstance(payload, dict):
            raise RequestError("the inference request must be a JSON object with 'inputs'")
        columns = _columns(manifest, payload, binary)
        wanted = _wanted(manifest, payload)
        predictions = await self.models.predict(
            served, columns, protocol=PROTOCOL, request_id=request_id
        )
        manifest = served.answering  # the version that answered (a fallback, maybe)
        outputs = outputs_of(manifest, predictions)
        rows = len(predictions.values)
        explicit = payload.get("outputs") is not None
        chosen = _chosen(outputs, wanted, rows, explicit)
        answer: dict[str, Any] = {
            "model_name": manifest.model,
            "model_version": str(manifest.version),
        }
        if isinstance(payload.get("id"), str):
            answer["id"] = payload["id"]
        answer["outputs"], blobs = _written(chosen)
        headers = answer_headers(served, request_id)
        if not blobs:
            return json_response(answer, headers=headers)
        head = orjson.dumps(answer, option=orjson.OPT_SERIALIZE_NUMPY)
        headers["Inference-Header-Content-Length"] = str(len(head))
        return Response(
            b"".join([head, *blobs]), headers=headers, media_type="application/octet-stream"
        )

    async def _find(self, request: Request) -> Served:
        name: str = request.path_params["name"]
        version: str | None = request.path_params.get("version")
        model, alias = name, None
        if "@" in name:
            model, alias = name.split("@", 1)
            if version is not None:
                raise RequestError(
                    f"name a version or an alias, not both: {name!r} with /versions/{version}"
                )
        if not model:
            raise RequestError("the model name is empty")
        if version is None:
            key = request_key(request) if alias is None else None
            return await self.models.find(model, alias=alias or None, key=key)
        if version.isascii() and version.isdigit():
            return await self.models.find(model, version=int(version))
        return await self.models.find(model, alias=version)

    async def _body(self, request: Request) -> bytes:
        kind = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
        if kind and kind not in BODY_TYPES and not kind.endswith("+json"):
            raise RequestError(
                f"content type {kind!r} is not read here; send the inference request as JSON "
                "(Content-Type: application/json), or application/octet-stream with the "
                "binary tensor extension",
                status=415,
            )
        return await body_of(request, self.max_bytes)  # decompressed, as every route

    def _metadata(self, manifest: ServableManifest) -> dict[str, Any]:
        versions = {m.version for m in self.models.list() if m.model == manifest.model} | {
            manifest.version
        }
        outputs: list[dict[str, Any]] = [
            {"name": "predict", "datatype": value_datatype(manifest), "shape": [-1]}
        ]
        if PROBA in output_names(manifest) and manifest.classes:
            outputs.append(
                {
                    "name": PROBA,
                    "datatype": "FP64",
                    "shape": [-1, len(manifest.classes)],
                    "parameters": {"classes": list(manifest.classes)},
                }
            )
        return {
            "name": manifest.model,
            "versions": [str(v) for v in sorted(versions)],
            "platform": f"gristmill_{manifest.kind}",
            "inputs": [
                {
                    "name": c.name,
                    "datatype": DATATYPES[c.type],
                    "shape": [-1],
                    "parameters": {"type": c.type, "nullable": c.nullable},
                }
                for c in manifest.inputs
            ],
            "outputs": outputs,
            "parameters": {
                "version": str(manifest.version),
                "kind": manifest.kind,
                "task": manifest.task,
                "output": manifest.output,
            },
        }


def _split(body: bytes, header_length: str | None) -> tuple[bytes, memoryview]:
    """The JSON header of ``body`` and the binary tensor data after it."""
    if header_length is None:
        return body, memoryview(b"")
    try:
        length = int(header_length)
    except ValueError:
        length = -1
    if not 0 < length <= len(body):
        raise RequestError(
            f"Inference-Header-Content-Length is {header_length!r}; it must be the byte length "
            f"of the JSON header, between 1 and the body's {len(body)} bytes",
            field="Inference-Header-Content-Length",
        )
    return body[:length], memoryview(body)[length:]


def _columns(
    manifest: ServableManifest, payload: Mapping[str, Any], binary: memoryview
) -> dict[str, np.ndarray]:
    """One typed array per input of the manifest, from the request's input tensors."""
    inputs = payload.get("inputs")
    if not isinstance(inputs, list) or not inputs:
        raise RequestError(
            "the inference request has no 'inputs'; send one tensor per column: "
            + ", ".join(c.name for c in manifest.inputs),
            field="inputs",
        )
    tensors: dict[str, tuple[Tensor, memoryview | None]] = {}
    offset = 0
    for index, value in enumerate(inputs):
        tensor = parse_tensor(value, index)
        if tensor.name in tensors:
            raise RequestError(f"input {tensor.name!r} is given twice", field=tensor.name)
        raw = None
        if tensor.binary_size is not None:
            raw = binary[offset : offset + tensor.binary_size]
            offset += tensor.binary_size
            if len(raw) != tensor.binary_size:
                raise RequestError(
                    f"input {tensor.name!r}: binary_data_size {tensor.binary_size} runs past "
                    "the end of the body",
                    field=tensor.name,
                )
        tensors[tensor.name] = (tensor, raw)
    if offset != len(binary):
        raise RequestError(
            f"the body holds {len(binary)} bytes of binary data after its JSON header; the "
            f"inputs' binary_data_size add up to {offset}"
        )
    if len(tensors) != len(manifest.inputs):
        _mismatch(manifest, tensors)
    columns: dict[str, np.ndarray] = {}
    rows = -1
    for column in manifest.inputs:
        given = tensors.get(column.name)
        if given is None:
            _mismatch(manifest, tensors)
        tensor, raw = given
        if rows < 0:
            rows = tensor.rows
        elif tensor.rows != rows:
            first = manifest.inputs[0].name
            raise RequestError(
                f"input {tensor.name!r} has {tensor.rows} row(s), input {first!r} {rows}; "
                "give every input one value per row",
                field=tensor.name,
            )
        columns[column.name] = (
            from_json(tensor, column) if raw is None else from_binary(tensor, raw, column)
        )
    return columns


def _mismatch(manifest: ServableManifest, tensors: Mapping[str, object]) -> NoReturn:
    """``RequestError`` naming an input the model does not take, else one it lacks."""
    takes = ", ".join(c.name for c in manifest.inputs)
    known = {c.name for c in manifest.inputs}
    for name in tensors:
        if name not in known:
            raise RequestError(
                f"input {name!r} is not an input of model {manifest.ref}; it takes: {takes}",
                field=name,
            )
    for column in manifest.inputs:
        if column.name not in tensors:
            raise RequestError(
                f"input {column.name!r} is missing; model {manifest.ref} takes: {takes}",
                field=column.name,
            )
    raise RequestError(f"the inputs do not match model {manifest.ref}'s: {takes}")


def _wanted(manifest: ServableManifest, payload: Mapping[str, Any]) -> list[tuple[str, bool]]:
    """The outputs to answer, each with whether it goes as binary data."""
    parameters = payload.get("parameters") or {}
    if not isinstance(parameters, dict):
        raise RequestError("'parameters' must be a JSON object", field="parameters")
    every_binary = parameters.get("binary_data_output") is True
    names = output_names(manifest)
    requested = payload.get("outputs")
    if requested is None:
        return [(name, every_binary) for name in [*names, REJECTED]]
    if not isinstance(requested, list):
        raise RequestError("'outputs' must be a list of {name, parameters}", field="outputs")
    wanted = []
    for index, value in enumerate(requested):
        name = value.get("name") if isinstance(value, dict) else None
        if not isinstance(name, str):
            raise RequestError(f"outputs[{index}] has no 'name'", field=f"outputs[{index}]")
        if name not in [*names, REJECTED]:
            raise RequestError(
                f"output {name!r} is not an output of model {manifest.ref}; it gives: "
                + ", ".join(names),
                field=name,
            )
        options = value.get("parameters") or {}
        if not isinstance(options, dict):
            raise RequestError(f"output {name!r}: 'parameters' must be an object", field=name)
        if options.get("classification"):
            raise RequestError(
                f"output {name!r}: the classification extension is not served; ask for "
                "predict_proba",
                field=name,
            )
        wanted.append((name, bool(options.get("binary_data", every_binary))))
    return wanted


def _chosen(
    outputs: dict[str, Output], wanted: list[tuple[str, bool]], rows: int, explicit: bool
) -> list[tuple[Output, bool]]:
    """The outputs asked for; ``rejected`` asked by name when no row was rejected: all false."""
    if explicit and REJECTED not in outputs:
        outputs[REJECTED] = Output(REJECTED, "BOOL", [rows], np.zeros(rows, dtype=bool))
    return [(outputs[name], as_binary) for name, as_binary in wanted if name in outputs]


def _written(chosen: list[tuple[Output, bool]]) -> tuple[list[dict[str, Any]], list[bytes]]:
    """The response's output tensors, and the binary data of those that go as binary."""
    tensors: list[dict[str, Any]] = []
    blobs: list[bytes] = []
    for output, as_binary in chosen:
        tensor: dict[str, Any] = {
            "name": output.name,
            "datatype": output.datatype,
            "shape": output.shape,
        }
        if as_binary:
            blob = binary_data(output)
            tensor["parameters"] = {"binary_data_size": len(blob)}
            blobs.append(blob)
        else:
            tensor["data"] = json_data(output)
        tensors.append(tensor)
    return tensors, blobs
