"""Reading a JSON request body by hand: plain bytes and dicts, no pydantic on the hot path.

Every endpoint that takes a body reads it here, so the size limit and the JSON rules
(no NaN, an object at the top) are the same for chat, contexts and feedback.
"""

from __future__ import annotations

import json
from typing import Any

from fastapi import Request

from router.proxy.api_errors import ApiError, bad_request


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
        data = json.loads(raw, parse_constant=_not_json)
    except UnicodeDecodeError as exc:
        message = f"the request body is not valid UTF-8: {exc}"
        raise bad_request(message, code="invalid_json") from None
    except ValueError as exc:
        message = f"the request body is not valid JSON: {exc}"
        raise bad_request(message, code="invalid_json") from None
    if not isinstance(data, dict):
        raise bad_request("the request body must be a JSON object", code="invalid_json")
    return data


def _not_json(name: str) -> Any:
    """Python's json reads NaN and Infinity; JSON has neither, and no upstream takes them."""
    raise ValueError(f"{name} is not a JSON value")


def _too_large(limit: int) -> ApiError:
    return ApiError(413, f"the request body is larger than {limit} bytes", code="body_too_large")
