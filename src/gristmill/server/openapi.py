"""The server's OpenAPI document, built from its routes.

Each endpoint describes itself: the YAML after ``---`` in its docstring is its OpenAPI
operation (Starlette's ``SchemaGenerator``); the schemas they share are below. An endpoint
whose docstring has no such part is left out, so a protocol module documents its routes the
same way.
"""

from __future__ import annotations

from typing import Any, TypeVar

from starlette.routing import BaseRoute
from starlette.schemas import SchemaGenerator

from gristmill import __version__

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


def document(routes: list[BaseRoute]) -> dict[str, Any]:
    """The OpenAPI 3.1 document of ``routes``."""
    generator = SchemaGenerator(
        {
            "openapi": "3.1.0",
            "info": {"title": "gristmill prediction server", "version": __version__},
            "components": {
                "schemas": {
                    "Error": ERROR,
                    "PredictRequest": PREDICT_REQUEST,
                    "PredictResponse": PREDICT_RESPONSE,
                }
            },
        }
    )
    return generator.get_schema(routes)


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


def operation(
    summary: str,
    *,
    parameters: tuple[dict[str, Any], ...] = (),
    body: str | None = None,
    answer: dict[str, Any] | str | None = None,
    errors: tuple[int, ...] = (),
    media: str = "application/json",
) -> dict[str, Any]:
    """An OpenAPI operation: ``body`` and a string ``answer`` name shared schemas."""
    schema = {"$ref": f"#/components/schemas/{answer}"} if isinstance(answer, str) else answer
    responses: dict[str, Any] = {"200": {"description": "OK"}}
    if schema is not None:
        responses["200"]["content"] = {media: {"schema": schema}}
    for status in errors:
        responses[str(status)] = {
            "description": ERROR_MEANING[status],
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
    401: "The server's bearer token is required",
    404: "No such model, alias or version",
    413: "More rows or bytes than the server takes in one request",
    415: "The body is not JSON",
    503: "The server is starting, or the version cannot be loaded",
}


def documented(endpoint: E, description: dict[str, Any]) -> E:
    """``endpoint`` with ``description`` as the OpenAPI part of its docstring."""
    import yaml

    endpoint.__doc__ = f"{description['summary']}\n---\n{yaml.safe_dump(description)}"
    return endpoint
