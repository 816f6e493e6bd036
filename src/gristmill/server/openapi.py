"""The server's OpenAPI document, built from its routes.

Each endpoint describes itself: the YAML after ``---`` in its docstring is its OpenAPI
operation (Starlette's ``SchemaGenerator``); the schemas they share are below. An endpoint
whose docstring has no such part is left out, so a protocol module documents its routes the
same way. The Open Inference Protocol's and MLflow's endpoints are described here
(``_protocol_operations``), so their handlers stay plain; any other endpoint is listed with
the first line of its docstring as its summary, its path parameters, and no schema for its
body.
"""

from __future__ import annotations

import re
from typing import Any, TypeVar

from starlette.routing import BaseRoute
from starlette.schemas import SchemaGenerator

from gristmill import __version__
from gristmill.core.quality_metrics import QUALITY_METRICS

E = TypeVar("E")

ERROR = {
    "type": "object",
    "required": ["error"],
    "properties": {
        "error": {"type": "string", "description": "What is wrong, naming the field."},
        "field": {"type": "string", "description": "The column or body field to blame."},
        "row": {"type": "integer", "description": "The row (from 0) to blame."},
    },
}
VALUE = {"description": "A JSON value: a number, text, true/false or null."}
PREDICT_REQUEST = {
    "type": "object",
    "additionalProperties": False,
    "description": "rows, or columns, or entities (with columns overriding their features).",
    "properties": {
        "rows": {
            "type": "array",
            "items": {"type": "object", "additionalProperties": VALUE},
            "description": "One object of raw columns per row.",
        },
        "columns": {
            "type": "object",
            "additionalProperties": {"type": "array", "items": VALUE},
            "description": "One list of values per raw column (or per feature, with entities).",
        },
        "entities": {
            "type": "array",
            "items": {"anyOf": [{"type": "string"}, {"type": "integer"}]},
            "description": "Entity keys whose features the online store holds.",
        },
    },
}
PREDICT_RESPONSE = {
    "type": "object",
    "required": ["model", "version", "request_id", "predictions"],
    "properties": {
        "model": {"type": "string"},
        "version": {"type": "integer"},
        "request_id": {"type": "string"},
        "fallback": {
            "type": "boolean",
            "description": "True when a version other than the one the request reached "
            "answered (it failed, or missed the request's latency budget).",
        },
        "predictions": {"type": "array", "items": VALUE},
        "classes": {"type": "array", "items": VALUE},
        "probabilities": {
            "type": "array",
            "items": {"type": "array", "items": {"type": ["number", "null"]}},
        },
        "status": {
            "type": "array",
            "items": {"enum": ["found", "missing", "expired", "superseded"]},
        },
        "rejected": {"type": "array", "items": {"type": "boolean"}},
    },
}

ANY_OBJECT = {"type": "object"}
RELOAD_RESPONSE = {
    "type": "object",
    "required": ["switched", "aliases"],
    "properties": {
        "switched": {
            "type": "array",
            "items": {"type": "string"},
            "description": "model@alias of each alias that moved to another version.",
        },
        "aliases": {
            "type": "object",
            "additionalProperties": {"type": "integer"},
            "description": "model@alias -> the version it serves, for the aliases in use.",
        },
    },
}
UNLOAD_REQUEST = {
    "type": "object",
    "required": ["ref"],
    "properties": {
        "ref": {
            "type": "string",
            "description": "NAME (its @champion), NAME@ALIAS or NAME/VERSION.",
            "examples": ["churn", "churn@challenger", "churn/3"],
        }
    },
}
UNLOAD_RESPONSE = {
    "type": "object",
    "required": ["unloaded", "loaded"],
    "properties": {
        "unloaded": {
            "type": "array",
            "items": {"type": "string"},
            "description": "NAME/VERSION of each version let go (empty: it was not loaded).",
        },
        "loaded": {"type": "array", "items": {"type": "string"}},
    },
}
VERSIONS = {"type": "array", "items": {"type": "integer", "minimum": 1}}
SHARE = {"type": ["number", "null"], "exclusiveMinimum": 0, "maximum": 1}
ROLLBACK_RULE = {
    "type": ["object", "null"],
    "additionalProperties": False,
    "description": "When the primary or the canary is demoted automatically (docs/monitoring.md"
    "#automatic-rollback): a miss rate (latency budget misses per request) or an error rate "
    "(5xx per request) above its maximum over the last window_minutes, once min_requests "
    "were served; a live quality drop or drift as the monitoring stages judge them. At "
    "least one of max_miss_rate, max_error_rate, max_quality_drop, on_drift. Left out of a "
    "PUT, the stored rule is kept; null removes it.",
    "properties": {
        "max_miss_rate": SHARE,
        "max_error_rate": SHARE,
        "max_quality_drop": {"type": ["number", "null"], "exclusiveMinimum": 0},
        "quality_metric": {"enum": [*QUALITY_METRICS, None]},
        "on_drift": {"type": "boolean"},
        "min_requests": {"type": "integer", "minimum": 1},
        "window_minutes": {"type": "number", "exclusiveMinimum": 0},
        "cooldown_minutes": {"type": "number", "minimum": 0},
        "webhook": {"type": ["string", "null"], "pattern": "^https?://"},
    },
}
POLICY_REQUEST = {
    "type": "object",
    "required": ["primary"],
    "additionalProperties": False,
    "description": "A model's traffic policy. primary answers; canary (with canary_share, "
    "0 < share < 1) takes a share of requests, sticky per x-gristmill-key or entity; shadow "
    "versions score beside the answer; fallback versions answer, in order, when the chosen "
    "one fails or is not loaded.",
    "properties": {
        "primary": {"type": "integer", "minimum": 1},
        "canary": {"type": ["integer", "null"], "minimum": 1},
        "canary_share": {"type": "number", "minimum": 0, "maximum": 1},
        "promote_after_requests": {
            "type": ["integer", "null"],
            "minimum": 1,
            "description": "The canary is promoted once it answered this many requests "
            "without a server error (pulled at its first one).",
        },
        "promote_after_minutes": {
            "type": ["number", "null"],
            "exclusiveMinimum": 0,
            "description": "The canary is promoted once it ran this many minutes without a "
            "server error (and answered a request).",
        },
        "shadow": VERSIONS,
        "fallback": VERSIONS,
        "rollback": ROLLBACK_RULE,
        "reason": {"type": "string"},
    },
}
POLICY = {
    "type": "object",
    "required": ["model", "kind", "primary", "canary_share", "shadow", "fallback", "revision"],
    "properties": {
        "model": {"type": "string"},
        "kind": {"enum": ["single", "canary"]},
        "primary": {"type": "integer"},
        "canary": {"type": ["integer", "null"]},
        "canary_share": {"type": "number"},
        "shadow": VERSIONS,
        "fallback": VERSIONS,
        "revision": {"type": "integer"},
        "changed_at": {"type": ["string", "null"]},
        "changed_by": {"type": "string"},
        "reason": {"type": "string"},
        "promote_after_requests": {"type": ["integer", "null"]},
        "promote_after_minutes": {"type": ["number", "null"]},
        "canary_since": {"type": ["string", "null"]},
        "canary_revision": {"type": ["integer", "null"]},
        "rollback": ROLLBACK_RULE,
        "applied": {
            "type": ["integer", "null"],
            "description": "The revision this server process applies (null: none yet).",
        },
    },
}
POLICY_LIST = {
    "type": "object",
    "required": ["policies", "applied"],
    "properties": {
        "policies": {"type": "array", "items": POLICY},
        "applied": {"type": "object", "additionalProperties": {"type": "integer"}},
    },
}
OIP_DATATYPE = {
    "enum": [
        "BOOL",
        "UINT8",
        "UINT16",
        "UINT32",
        "UINT64",
        "INT8",
        "INT16",
        "INT32",
        "INT64",
        "FP16",
        "FP32",
        "FP64",
        "BYTES",
    ]
}
OIP_PARAMETERS = {"type": "object", "additionalProperties": VALUE}
INFER_REQUEST = {
    "type": "object",
    "required": ["inputs"],
    "description": "An Open Inference Protocol v2 request: one tensor per raw column. With "
    "the binary tensor extension the body is this JSON (its length in the "
    "Inference-Header-Content-Length header) followed by the tensors' bytes.",
    "properties": {
        "id": {"type": "string"},
        "parameters": OIP_PARAMETERS,
        "inputs": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["name", "shape", "datatype"],
                "properties": {
                    "name": {"type": "string", "description": "A raw column of the model."},
                    "shape": {"type": "array", "items": {"type": "integer", "minimum": 0}},
                    "datatype": OIP_DATATYPE,
                    "parameters": OIP_PARAMETERS,
                    "data": {
                        "type": "array",
                        "items": VALUE,
                        "description": "The values, flat or nested by shape (absent when "
                        "parameters.binary_data_size says they follow in binary).",
                    },
                },
            },
        },
        "outputs": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["name"],
                "properties": {
                    "name": {"enum": ["predict", "predict_proba", "rejected"]},
                    "parameters": OIP_PARAMETERS,
                },
            },
        },
    },
}
INFER_RESPONSE = {
    "type": "object",
    "required": ["model_name", "outputs"],
    "properties": {
        "model_name": {"type": "string"},
        "model_version": {"type": "string"},
        "id": {"type": "string"},
        "parameters": OIP_PARAMETERS,
        "outputs": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["name", "shape", "datatype"],
                "properties": {
                    "name": {"type": "string"},
                    "shape": {"type": "array", "items": {"type": "integer"}},
                    "datatype": OIP_DATATYPE,
                    "parameters": OIP_PARAMETERS,
                    "data": {"type": "array", "items": VALUE},
                },
            },
        },
    },
}
OIP_MODEL = {
    "type": "object",
    "required": ["name", "platform", "inputs", "outputs"],
    "properties": {
        "name": {"type": "string"},
        "versions": {"type": "array", "items": {"type": "string"}},
        "platform": {"type": "string"},
        "inputs": {"type": "array", "items": ANY_OBJECT},
        "outputs": {"type": "array", "items": ANY_OBJECT},
        "parameters": ANY_OBJECT,
    },
}
RECORDS = {"type": "array", "items": {"type": "object", "additionalProperties": VALUE}}
ROWS = {
    "anyOf": [
        RECORDS,
        {"type": "array", "items": {"type": "array", "items": VALUE}},
    ]
}
INVOCATIONS_REQUEST = {
    "type": "object",
    "description": "Exactly one of dataframe_split, dataframe_records, instances, inputs "
    "(MLflow's scoring protocol); params is accepted and ignored.",
    "oneOf": [
        {
            "required": ["dataframe_split"],
            "properties": {
                "dataframe_split": {
                    "type": "object",
                    "required": ["columns", "data"],
                    "properties": {
                        "columns": {"type": "array", "items": {"type": "string"}},
                        "data": {"type": "array", "items": {"type": "array", "items": VALUE}},
                        "index": {"type": "array", "items": VALUE},
                    },
                }
            },
        },
        {"required": ["dataframe_records"], "properties": {"dataframe_records": RECORDS}},
        {"required": ["instances"], "properties": {"instances": ROWS}},
        {
            "required": ["inputs"],
            "properties": {
                "inputs": {
                    "anyOf": [
                        {"type": "object", "additionalProperties": {"type": "array"}},
                        RECORDS,
                        {"type": "array", "items": {"type": "array", "items": VALUE}},
                    ]
                }
            },
        },
    ],
    "properties": {"params": ANY_OBJECT},
}
INVOCATIONS_RESPONSE = {
    "type": "object",
    "required": ["predictions"],
    "properties": {"predictions": {"type": "array", "items": VALUE}},
}
MLFLOW_ERROR = {
    "type": "object",
    "required": ["error_code", "message"],
    "properties": {
        "error_code": {"enum": ["BAD_REQUEST", "RESOURCE_DOES_NOT_EXIST", "INTERNAL_ERROR"]},
        "message": {"type": "string"},
    },
}
JOB_REQUEST = {
    "type": "object",
    "required": ["model", "input"],
    "additionalProperties": False,
    "properties": {
        "model": {
            "type": "string",
            "description": "NAME (its @champion), NAME@ALIAS or NAME/VERSION.",
            "examples": ["churn", "churn@challenger", "churn/3"],
        },
        "input": {
            "type": "string",
            "description": "A file the server can read (.csv, .parquet, .jsonl; path or fsspec "
            "URL), batch:BATCH_ID, source:SOURCE (its newest batch) or feature_set:ID_OR_NAME.",
        },
        "webhook": {
            "type": "string",
            "description": "An http(s) URL POSTed the job's summary when it ends.",
        },
    },
}
JOB_ACCEPTED = {
    "type": "object",
    "required": ["job_id", "state", "url"],
    "properties": {
        "job_id": {"type": "string"},
        "state": {
            "enum": ["queued", "running", "succeeded", "failed", "stopped"],
            "description": "stopped: recorded running, but its holder (a worker, a "
            "`gristmill score`, a server) is gone; `resume` finishes it.",
        },
        "recorded_state": {"type": "string", "description": "A stopped job's recorded state."},
        "stopped": {"type": "string", "description": "Why a stopped job stopped."},
        "resume": {"type": "string", "description": "The command that finishes the job."},
        "url": {"type": "string", "description": "Where to follow the job."},
    },
}
_TEXT_OR_NULL = {"type": ["string", "null"]}
JOB = {
    "type": "object",
    "required": ["job_id", "model", "input", "state", "progress", "rows", "bad_rows", "errors"],
    "properties": {
        "job_id": {"type": "string"},
        "model": {"type": "string"},
        "version": {"type": ["integer", "null"]},
        "input": {"type": "string"},
        "input_kind": _TEXT_OR_NULL,
        "state": {
            "enum": ["queued", "running", "succeeded", "failed", "stopped"],
            "description": "stopped: recorded running, but its holder (a worker, a "
            "`gristmill score`, a server) is gone; `resume` finishes it.",
        },
        "recorded_state": {"type": "string", "description": "A stopped job's recorded state."},
        "stopped": {"type": "string", "description": "Why a stopped job stopped."},
        "resume": {"type": "string", "description": "The command that finishes the job."},
        "progress": {
            "type": "object",
            "properties": {"done": {"type": "integer"}, "total": {"type": "integer"}},
            "description": "Partitions scored of all.",
        },
        "partitions_done": {"type": "integer"},
        "partitions_total": {"type": "integer"},
        "rows": {"type": "integer", "description": "Rows scored."},
        "bad_rows": {"type": "integer", "description": "Rows that could not be scored."},
        "errors": {
            "type": "array",
            "items": {"type": "object"},
            "description": "The first bad rows: row (from 0), key, error.",
        },
        "error": {**_TEXT_OR_NULL, "description": "Why a failed job failed."},
        "where": {**_TEXT_OR_NULL, "description": "The folder (URL) of the job's scores."},
        "location": _TEXT_OR_NULL,
        "webhook": _TEXT_OR_NULL,
        "created_at": _TEXT_OR_NULL,
        "started_at": _TEXT_OR_NULL,
        "finished_at": _TEXT_OR_NULL,
    },
}
FEEDBACK_REQUEST = {
    "type": "object",
    "required": ["outcomes"],
    "additionalProperties": False,
    "description": "Actual outcomes, each naming its prediction by request_id (and row) or "
    "by entity (and at, default: when received; entities need model). The last outcome "
    "received for a prediction wins; the others are counted as duplicates.",
    "properties": {
        "model": {"type": "string", "description": "The model (needed for entities)."},
        "outcomes": {
            "type": "array",
            "minItems": 1,
            "items": {
                "type": "object",
                "required": ["actual"],
                "additionalProperties": False,
                "properties": {
                    "request_id": {
                        "type": "string",
                        "minLength": 1,
                        "maxLength": 128,
                        "description": "The request_id a prediction answer carried.",
                    },
                    "row": {
                        "type": "integer",
                        "minimum": 0,
                        "description": "The row of that request (default 0).",
                    },
                    "entity": {"anyOf": [{"type": "string"}, {"type": "integer"}]},
                    "at": {
                        "type": "string",
                        "format": "date-time",
                        "description": "With entity: the outcome is of the entity's last "
                        "prediction at or before this time (with a time zone).",
                    },
                    "actual": {
                        "anyOf": [{"type": "number"}, {"type": "string"}, {"type": "boolean"}],
                        "description": "What actually happened: the class, or the number.",
                    },
                },
            },
        },
    },
}
FEEDBACK_ACCEPTED = {
    "type": "object",
    "required": ["feedback_id", "outcomes"],
    "properties": {
        "feedback_id": {
            "type": "string",
            "description": "The id of the feedback.received event that carries them.",
        },
        "outcomes": {"type": "integer", "description": "Outcomes accepted."},
    },
}

SCHEMAS = {
    "Error": ERROR,
    "PredictRequest": PREDICT_REQUEST,
    "PredictResponse": PREDICT_RESPONSE,
    "ReloadResponse": RELOAD_RESPONSE,
    "UnloadRequest": UNLOAD_REQUEST,
    "UnloadResponse": UNLOAD_RESPONSE,
    "PolicyRequest": POLICY_REQUEST,
    "Policy": POLICY,
    "PolicyList": POLICY_LIST,
    "InferRequest": INFER_REQUEST,
    "InferResponse": INFER_RESPONSE,
    "OipModel": OIP_MODEL,
    "InvocationsRequest": INVOCATIONS_REQUEST,
    "InvocationsResponse": INVOCATIONS_RESPONSE,
    "MlflowError": MLFLOW_ERROR,
    "JobRequest": JOB_REQUEST,
    "JobAccepted": JOB_ACCEPTED,
    "Job": JOB,
    "FeedbackRequest": FEEDBACK_REQUEST,
    "FeedbackAccepted": FEEDBACK_ACCEPTED,
}


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _protocol_operations() -> dict[tuple[str, str], dict[str, Any]]:
    """The Open Inference Protocol's and MLflow's operations (their modules hold no OpenAPI
    parts, so that their handlers stay plain)."""
    name = parameter("name", "NAME (its @champion) or NAME@ALIAS")
    version = parameter("version", "A version number (or an alias)")
    infer_errors = (400, 401, 404, 413, 415, 503)
    found: dict[tuple[str, str], dict[str, Any]] = {}
    for path, params in (
        ("/v2/models/{name}", (name,)),
        ("/v2/models/{name}/versions/{version}", (name, version)),
    ):
        found[(f"{path}/infer", "post")] = operation(
            "Score tensors (Open Inference Protocol v2)",
            parameters=params,
            body="InferRequest",
            answer="InferResponse",
            errors=infer_errors,
        )
        found[(path, "get")] = operation(
            "A model's metadata (OIP)",
            parameters=params,
            answer="OipModel",
            errors=(400, 404, 503),
        )
        found[(f"{path}/ready", "get")] = operation(
            "200 when the model can be served (OIP)",
            parameters=params,
            answer=ANY_OBJECT,
            errors=(400, 404, 503),
        )
    found[("/v2", "get")] = operation("The server's metadata (OIP)", answer=ANY_OBJECT)
    found[("/v2/health/live", "get")] = operation("Live (OIP)", answer=ANY_OBJECT)
    found[("/v2/health/ready", "get")] = operation(
        "Ready (OIP; 400 until ready)", answer=ANY_OBJECT, errors=(400,)
    )
    invocations = operation(
        "Score a table (MLflow's scoring protocol)",
        body="InvocationsRequest",
        answer="InvocationsResponse",
    )
    invocations["parameters"] = [
        {
            "name": "model",
            "in": "query",
            "required": False,
            "description": "NAME, NAME@ALIAS or NAME/VERSION (default: the one preloaded model)",
            "schema": {"type": "string"},
        }
    ]
    invocations["requestBody"]["content"]["text/csv"] = {
        "schema": {"type": "string", "description": "A header row of raw columns, then rows."}
    }
    for status in (400, 401, 404, 413, 415, 503):
        invocations["responses"][str(status)] = {
            "description": ERROR_MEANING[status],
            "content": {"application/json": {"schema": _ref("MlflowError")}},
        }
    found[("/invocations", "post")] = invocations
    text = {"type": "string"}
    for path, summary in (("/ping", "Ready (MLflow)"), ("/health", "Ready (MLflow)")):
        found[(path, "get")] = operation(summary, answer=text, media="text/plain", errors=())
        found[(path, "get")]["responses"]["503"] = {"description": ERROR_MEANING[503]}
    found[("/version", "get")] = operation(
        "The server's version (MLflow)", answer=text, media="text/plain"
    )
    return found


def document(routes: list[BaseRoute]) -> dict[str, Any]:
    """The OpenAPI 3.1 document of ``routes``."""
    generator = SchemaGenerator(
        {
            "openapi": "3.1.0",
            "info": {"title": "gristmill prediction server", "version": __version__},
            "components": {"schemas": SCHEMAS},
        }
    )
    schema = generator.get_schema(routes)
    protocols = _protocol_operations()
    for endpoint in generator.get_endpoints(routes):
        operations = schema["paths"].setdefault(endpoint.path, {})
        if endpoint.http_method not in operations:
            known = protocols.get((endpoint.path, endpoint.http_method))
            operations[endpoint.http_method] = known or _plain(endpoint.path, endpoint.func)
    return schema


def _plain(path: str, func: Any) -> dict[str, Any]:
    """An endpoint without an OpenAPI part in its docstring: its first line as the summary,
    its path parameters as text, any JSON answer."""
    summary = (func.__doc__ or func.__name__).strip().splitlines()[0]
    names = re.findall(r"{(\w+)}", path)
    found = operation(
        summary,
        parameters=tuple(parameter(n, n) for n in names),
        answer={},
        errors=(400, 404),
    )
    found["responses"]["200"]["content"] = {"*/*": {"schema": {}}}
    return found


def parameter(name: str, description: str, kind: str = "string") -> dict[str, Any]:
    """A path parameter."""
    schema = {"type": kind, "minimum": 1} if kind == "integer" else {"type": kind}
    return {
        "name": name,
        "in": "path",
        "required": True,
        "description": description,
        "schema": schema,
    }


def header(name: str, description: str, kind: str = "string") -> dict[str, Any]:
    """An optional request header."""
    return {"name": name, "in": "header", "required": False, "description": description,
            "schema": {"type": kind}}  # fmt: skip


def operation(
    summary: str,
    *,
    parameters: tuple[dict[str, Any], ...] = (),
    body: str | None = None,
    answer: dict[str, Any] | str | None = None,
    errors: tuple[int, ...] = (),
    media: str = "application/json",
    status: int = 200,
) -> dict[str, Any]:
    """An OpenAPI operation: ``body`` and a string ``answer`` name shared schemas; ``status``
    is the success status (202 for work accepted to run later)."""
    schema = {"$ref": f"#/components/schemas/{answer}"} if isinstance(answer, str) else answer
    success = str(status)
    responses: dict[str, Any] = {success: {"description": "OK" if status == 200 else "Accepted"}}
    if schema is not None:
        responses[success]["content"] = {media: {"schema": schema}}
    for refused in errors:
        responses[str(refused)] = {
            "description": ERROR_MEANING[refused],
            "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
        }
    found: dict[str, Any] = {"summary": summary, "responses": responses}
    if parameters:
        found["parameters"] = list(parameters)
    if body is not None:
        found["requestBody"] = {
            "required": True,
            "content": {"application/json": {"schema": {"$ref": f"#/components/schemas/{body}"}}},
        }
    return found


ERROR_MEANING = {
    400: "Bad input: malformed JSON, a missing or mistyped column (named in field)",
    401: "The server's bearer token is missing or wrong (WWW-Authenticate: Bearer)",
    404: "No such model, alias, version, input or job",
    413: "More rows or bytes than the server takes in one request",
    415: "The body is not of a content type the endpoint reads",
    503: "The server is starting, or the version cannot be loaded",
}


def documented(endpoint: E, description: dict[str, Any]) -> E:
    """``endpoint`` with ``description`` as the OpenAPI part of its docstring."""
    import yaml

    endpoint.__doc__ = f"{description['summary']}\n---\n{yaml.safe_dump(description)}"
    return endpoint
