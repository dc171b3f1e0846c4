"""The request bodies of the hand-parsed endpoints, in the app's OpenAPI schema.

`/v1/chat/completions`, `/v1/contexts` and `/v1/feedback` read their bodies by
hand (no pydantic on the hot path), so FastAPI cannot see what they accept.
This module writes it down once, so `/openapi.json` documents the whole API
and a schema-driven fuzzer (schemathesis, in the tests) can aim at every
endpoint. The chat schema covers the parameters the proxy itself checks
(`router.proxy.formats.chat_parsing`); others pass through to the upstream, so the schema
allows additional properties.

It also says who may call what (`router.proxy.gate`): a bearer key everywhere but the
open paths, the master key for `/admin/*` and `/metrics`.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI

from router.answer_formats import FORMATS
from router.apikeys import NAME
from router.proxy.endpoints import MAX_EXPECTED_QUERIES
from router.proxy.formats.chat_parsing import COUNTS, NUMBERS, ROLES
from router.proxy.gate import OPEN

_JSON = "application/json"

_CONTENT: dict[str, Any] = {
    "anyOf": [
        {"type": "string"},
        {"type": "array", "items": {"type": "object"}},
        {"type": "null"},
    ]
}
_MESSAGE: dict[str, Any] = {
    "type": "object",
    "required": ["role"],
    "properties": {"role": {"type": "string", "enum": sorted(ROLES)}, "content": _CONTENT},
}
_METADATA: dict[str, Any] = {
    "type": "object",
    "properties": {"sleeptime_context": {"type": "string"}},
}

CHAT_REQUEST: dict[str, Any] = {
    "type": "object",
    "required": ["messages"],
    "properties": {
        "model": {"type": "string"},
        "messages": {"type": "array", "minItems": 1, "items": _MESSAGE},
        "stream": {"type": "boolean"},
        "stream_options": {"type": "object", "properties": {"include_usage": {"type": "boolean"}}},
        "metadata": _METADATA,
        "stop": {"anyOf": [{"type": "string"}, {"type": "array", "items": {"type": "string"}}]},
        "user": {"type": "string"},
        **{
            name: {"type": "number", "minimum": low, "maximum": high}
            for name, (low, high) in NUMBERS.items()
        },
        **{
            name: {"type": "integer", "minimum": low, "maximum": high}
            for name, (low, high) in COUNTS.items()
        },
    },
}
CONTEXT_REQUEST: dict[str, Any] = {
    "type": "object",
    "properties": {
        "id": {"type": "string"},
        "context": {"type": "string"},
        "messages": {"type": "array", "items": _MESSAGE},
        "expected_queries": {
            "type": "number",
            "exclusiveMinimum": 0,
            "maximum": MAX_EXPECTED_QUERIES,
        },
        "answer_format": {"type": "string", "enum": sorted(FORMATS)},
    },
}
FEEDBACK_REQUEST: dict[str, Any] = {
    "type": "object",
    "required": ["request_id", "correct"],
    "properties": {"request_id": {"type": "string"}, "correct": {"type": "boolean"}},
}

KEY_REQUEST: dict[str, Any] = {
    "type": "object",
    "required": ["name"],
    "properties": {
        "name": {"type": "string", "pattern": NAME.pattern},
        "rpm": {"type": "integer", "minimum": 0},
        "tpm": {"type": "integer", "minimum": 0},
        "budget_usd": {"type": ["number", "null"], "minimum": 0},
    },
}
_BEARER = {
    "type": "http",
    "scheme": "bearer",
    "description": "a client key (`sleeptime keys create`) or the master key; in local mode "
    "(no master key) any key, which names the caller's tenant",
}


def document(app: FastAPI) -> None:
    """Replaces `app.openapi` with one that adds the hand-parsed request bodies."""
    build = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = build()
            paths = schema.setdefault("paths", {})
            paths["/v1/chat/completions"] = {"post": _operation("Create a chat completion")}
            paths["/v1/chat/completions"]["post"]["requestBody"] = _body(CHAT_REQUEST)
            paths["/v1/contexts"]["post"]["requestBody"] = _body(CONTEXT_REQUEST)
            paths["/v1/feedback"]["post"]["requestBody"] = _body(FEEDBACK_REQUEST)
            _keys(paths)
            _security(schema)
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


def _operation(summary: str) -> dict[str, Any]:
    return {
        "summary": summary,
        "operationId": "create_chat_completion",
        "responses": {"200": {"description": "The completion (JSON, or SSE when streaming)"}},
    }


def _body(schema: dict[str, Any]) -> dict[str, Any]:
    return {"required": True, "content": {_JSON: {"schema": schema}}}


def _keys(paths: dict[str, Any]) -> None:
    paths["/admin/keys"]["post"]["requestBody"] = _body(KEY_REQUEST)
    paths["/admin/keys"]["post"]["summary"] = "Create a client key (master key only)"
    revoke = paths["/admin/keys/{name}"]["delete"]
    revoke["summary"] = "Revoke a client key by name (master key only)"
    for parameter in revoke.get("parameters", []):
        if parameter.get("name") == "name":
            parameter["schema"] = {"type": "string", "pattern": NAME.pattern}


def _security(schema: dict[str, Any]) -> None:
    schema.setdefault("components", {}).setdefault("securitySchemes", {})["bearer"] = _BEARER
    schema["security"] = [{"bearer": []}]
    for path, operations in schema["paths"].items():
        if path in OPEN:
            for operation in operations.values():
                operation["security"] = []
