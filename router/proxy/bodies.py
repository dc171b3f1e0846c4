"""Reading a JSON request body by hand: plain bytes and dicts, no pydantic on the hot path.

Every endpoint that takes a body reads it here, so the rules are the same for chat,
contexts, feedback and the pass-through endpoints:

    media type   `application/json` (`; charset=utf-8` allowed), else 415 before a byte
                 of the body is read: a browser's "simple" `text/plain` request is never
                 served
    size         within the endpoint's limit, else 413 with `Connection: close`; an
                 oversized body is first read to its end and dropped (up to
                 `DRAIN_FACTOR` times the limit, within `DRAIN_S`), because clients that
                 upload before they read (urllib, requests) otherwise see a reset, not
                 the 413
    time         the whole body within `body_timeout_s`, else 408, `Connection: close`
    memory       a body past `parse_off_loop_bytes` (or of unknown length) takes its
                 size from a `ByteBudget` before it is read and gives it back once
                 parsed; a reader the budget cannot serve within `BUDGET_WAIT_S` gets
                 503 + Retry-After
    reading      one canonical reading (`router.proxy.canonical_json`), parsed in a
                 thread past `parse_off_loop_bytes` so the event loop goes on serving
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any, TypeVar

import anyio
from anyio import to_thread
from fastapi import Request

from router.proxy import canonical_json
from router.proxy.api_errors import ApiError, bad_request
from router.proxy.body_budget import ByteBudget
from router.proxy.deadline import Deadline
from router.settings import Settings

T = TypeVar("T")
MAX_BYTES = Settings.max_body_bytes
DRAIN_FACTOR = 4  # an oversized body up to 4x the limit is read and dropped before the 413
DRAIN_S = 5.0
BUDGET_BODIES = 4  # bodies of `max_body_bytes` buffered at once (32 MB by default)
BUDGET_WAIT_S = 5.0  # then 503 + Retry-After
CLOSE = {"Connection": "close"}
# The nesting limit of the body being parsed: set by `parse_body`, read by `load_object`,
# so a format adapter's `parse(raw)` keeps its one-argument signature.
_MAX_DEPTH: ContextVar[int] = ContextVar("max_json_depth", default=Settings.max_json_depth)


@dataclass(frozen=True)
class BodyRules:
    max_bytes: int = MAX_BYTES
    timeout_s: float = Settings.body_timeout_s
    max_depth: int = Settings.max_json_depth
    off_loop_bytes: int = Settings.parse_off_loop_bytes
    budget: ByteBudget = field(default_factory=lambda: ByteBudget(BUDGET_BODIES * MAX_BYTES))

    @classmethod
    def from_settings(cls, settings: Settings) -> BodyRules:
        return cls(
            max_bytes=settings.max_body_bytes,
            timeout_s=settings.body_timeout_s,
            max_depth=settings.max_json_depth,
            off_loop_bytes=settings.parse_off_loop_bytes,
            budget=ByteBudget(BUDGET_BODIES * settings.max_body_bytes),
        )


def rules_of(request: Request) -> BodyRules:
    """The app's rules (`create_app` sets them); an app built otherwise gets the defaults."""
    state = request.app.state
    rules = getattr(state, "bodies", None)
    if rules is None:
        rules = state.bodies = BodyRules()
    return rules


async def read_body(request: Request, limit: int | None = None) -> bytes:
    """The body's bytes, within `limit` (default: `max_body_bytes`) and the rules above."""
    rules = rules_of(request)
    raw, held = await _read(request, rules, limit)
    rules.budget.give(held)
    return raw


async def read_parsed(request: Request, parse: Callable[[bytes], T], limit: int | None = None) -> T:
    """`parse` of the body, its bytes held against the budget until it is parsed."""
    rules = rules_of(request)
    raw, held = await _read(request, rules, limit)
    try:
        return await parse_body(request, raw, parse)
    finally:
        rules.budget.give(held)


async def read_object(request: Request, limit: int | None = None) -> dict[str, Any]:
    return await read_parsed(request, load_object, limit)


async def parse_body(request: Request, raw: bytes, parse: Callable[[bytes], T]) -> T:
    """`parse(raw)` under the app's nesting limit; in a thread past `parse_off_loop_bytes`
    (an 8 MB body takes ~40 ms to parse, which on the loop is 40 ms of every request)."""
    rules = rules_of(request)
    token = _MAX_DEPTH.set(rules.max_depth)
    try:
        if len(raw) > rules.off_loop_bytes:
            return await to_thread.run_sync(parse, raw)  # copies the context: the limit too
        return parse(raw)
    finally:
        _MAX_DEPTH.reset(token)


def load_object(raw: bytes) -> dict[str, Any]:
    if not raw.strip():
        raise bad_request("the request body is empty; send a JSON object", code="invalid_json")
    try:
        data = canonical_json.loads(raw, _MAX_DEPTH.get())
    except canonical_json.NotCanonical as exc:
        raise bad_request(str(exc), code="invalid_json") from None
    if not isinstance(data, dict):
        raise bad_request("the request body must be a JSON object", code="invalid_json")
    return data


def check_media_type(value: str | None) -> None:
    """`application/json`, with at most a UTF-8 charset; anything else, or none, is 415."""
    if value == "application/json":  # what nearly every client sends
        return
    media, _, params = (value or "").partition(";")
    charsets = [p.partition("=") for p in params.split(";") if p.strip()]
    json_only = media.strip().lower() == "application/json"
    utf8 = all(
        name.strip().lower() == "charset" and given.strip().strip('"').lower() in ("utf-8", "utf8")
        for name, _, given in charsets
    )
    if not (json_only and utf8):
        message = f"send the body as application/json (UTF-8); got {value or 'no Content-Type'!r}"
        raise ApiError(415, message, code="unsupported_media_type")


async def _read(request: Request, rules: BodyRules, limit: int | None) -> tuple[bytes, int]:
    """(the body, the bytes it holds of the budget, for the caller to give back)."""
    check_media_type(request.headers.get("content-type"))
    limit = rules.max_bytes if limit is None else limit
    length = request.headers.get("content-length", "")
    declared = int(length) if length.isdigit() else None
    stream = request.stream()
    if declared is not None and declared > limit:
        # A client that waits for a 100 Continue has sent nothing yet, and never will.
        waiting = request.headers.get("expect", "").lower() == "100-continue"
        raise await _refuse(stream, _too_large(limit), declared, limit, drain=not waiting)
    size = limit if declared is None else declared
    if size <= rules.off_loop_bytes:  # a small body skips the budget: the hot path
        return await _collect(stream, rules, limit), 0
    held = await _reserve(rules, stream, size, limit)
    try:
        return await _collect(stream, rules, limit), held
    except BaseException:
        rules.budget.give(held)
        raise


async def _reserve(rules: BodyRules, stream: AsyncIterator[bytes], size: int, limit: int) -> int:
    with anyio.move_on_after(min(BUDGET_WAIT_S, rules.timeout_s)):
        return await rules.budget.take(size)
    message = "the proxy is reading as many request bodies as it holds; retry shortly"
    headers = {**CLOSE, "Retry-After": "1"}
    busy = ApiError(503, message, type="server_error", code="bodies_busy", headers=headers)
    raise await _refuse(stream, busy, 0, limit, drain=True)


async def _collect(stream: AsyncIterator[bytes], rules: BodyRules, limit: int) -> bytes:
    chunks: list[bytes] = []
    size = 0
    try:
        with Deadline(rules.timeout_s):
            async for chunk in stream:
                size += len(chunk)
                if size > limit:
                    raise await _refuse(stream, _too_large(limit), size, limit, drain=True)
                chunks.append(chunk)
    except TimeoutError:
        message = f"the request body did not arrive within {rules.timeout_s:g} s"
        raise ApiError(408, message, code="body_timeout", headers=CLOSE) from None
    return b"".join(chunks)


async def _refuse(
    stream: AsyncIterator[bytes], error: ApiError, size: int, limit: int, *, drain: bool
) -> ApiError:
    """Reads what is left of the body and drops it, unless the client declared more than
    is worth reading; the connection closes after the error either way."""
    cap = DRAIN_FACTOR * limit
    if drain and size <= cap:
        with anyio.move_on_after(DRAIN_S):
            async for chunk in stream:
                size += len(chunk)
                if size > cap:
                    break
    return error


def _too_large(limit: int) -> ApiError:
    message = f"the request body is larger than {limit} bytes"
    return ApiError(413, message, code="body_too_large", headers=CLOSE)
