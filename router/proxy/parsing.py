"""Reading and checking a chat request by hand: plain dicts, no pydantic on the hot path.

Checks are the ones that would otherwise surface as an upstream 400 with a
worse message, or as a crash inside the proxy: shape, types, roles. Fields the
proxy does not know pass through untouched, so new OpenAI parameters keep
working without a proxy release.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from fastapi import Request

from router.proxy.errors import ApiError, bad_request

ROLES = frozenset({"system", "developer", "user", "assistant", "tool", "function"})
NEEDS_CONTENT = frozenset({"system", "developer", "user"})
CONTEXT_KEY = "sleeptime_context"  # in the request's `metadata`
NUMBERS = ("temperature", "top_p", "presence_penalty", "frequency_penalty")
COUNTS = ("max_tokens", "max_completion_tokens", "n")


@dataclass(frozen=True)
class ChatRequest:
    raw: bytes
    body: dict[str, Any]
    messages: list[dict[str, Any]]
    stream: bool
    include_usage: bool
    context_name: str | None  # metadata.sleeptime_context, stripped before forwarding


async def read_body(request: Request, limit: int) -> bytes:
    """Refuses an oversized body from its Content-Length, or as soon as it grows too big."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise _too_large(limit)
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise _too_large(limit)
        chunks.append(chunk)
    return b"".join(chunks)


def load_object(raw: bytes) -> dict[str, Any]:
    if not raw.strip():
        raise bad_request("the request body is empty; send a JSON object", code="invalid_json")
    try:
        data = json.loads(raw)
    except UnicodeDecodeError as exc:
        message = f"the request body is not valid UTF-8: {exc}"
        raise bad_request(message, code="invalid_json") from None
    except ValueError as exc:
        message = f"the request body is not valid JSON: {exc}"
        raise bad_request(message, code="invalid_json") from None
    if not isinstance(data, dict):
        raise bad_request("the request body must be a JSON object", code="invalid_json")
    return data


def parse_chat(raw: bytes) -> ChatRequest:
    body = load_object(raw)
    messages = _messages(body.get("messages"))
    _check_scalars(body)
    stream = body.get("stream") or False
    options = _optional(body, "stream_options", dict) or {}
    metadata = _optional(body, "metadata", dict) or {}
    name = metadata.get(CONTEXT_KEY)
    if name is not None and not isinstance(name, str):
        raise bad_request(f"metadata.{CONTEXT_KEY} must be a string", param="metadata")
    include_usage = bool(stream and options.get("include_usage"))
    return ChatRequest(raw, body, messages, bool(stream), include_usage, name)


def _messages(value: Any) -> list[dict[str, Any]]:
    if value is None:
        raise bad_request("'messages' is required", param="messages", code="missing_required")
    if not isinstance(value, list) or not value:
        raise bad_request("'messages' must be a non-empty array", param="messages")
    for index, message in enumerate(value):
        check_message(index, message)
    return value


def check_message(index: int, message: Any) -> None:
    param = f"messages[{index}]"
    if not isinstance(message, dict):
        raise bad_request(f"{param} must be an object", param=param)
    role = message.get("role")
    if role not in ROLES:
        roles = ", ".join(sorted(ROLES))
        raise bad_request(f"{param}.role must be one of {roles}; got {role!r}", param=param)
    content = message.get("content")
    if content is None and role not in NEEDS_CONTENT:
        return
    if isinstance(content, list) and all(isinstance(part, dict) for part in content):
        return
    if not isinstance(content, str):
        raise bad_request(
            f"{param}.content must be a string or an array of content parts", param=param
        )


def _check_scalars(body: dict[str, Any]) -> None:
    _optional(body, "model", str)
    _optional(body, "stream", bool)
    for name in NUMBERS:
        value = body.get(name)
        if value is not None and (isinstance(value, bool) or not isinstance(value, int | float)):
            raise bad_request(f"'{name}' must be a number", param=name)
    for name in COUNTS:
        value = body.get(name)
        if value is not None and (not isinstance(value, int) or isinstance(value, bool)):
            raise bad_request(f"'{name}' must be an integer", param=name)
        if isinstance(value, int) and value < 1:
            raise bad_request(f"'{name}' must be at least 1", param=name)


def _optional(body: dict[str, Any], name: str, kind: type) -> Any:
    value = body.get(name)
    if value is not None and not isinstance(value, kind):
        raise bad_request(f"'{name}' must be of type {_type_name(kind)}", param=name)
    return value


def _type_name(kind: type) -> str:
    return {str: "string", bool: "boolean", dict: "object"}.get(kind, kind.__name__)


def _too_large(limit: int) -> ApiError:
    return ApiError(413, f"the request body is larger than {limit} bytes", code="body_too_large")
