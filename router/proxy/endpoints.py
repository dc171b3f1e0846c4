"""The proxy's endpoints besides the routed ones: models, contexts, feedback, health, metrics.

None of them is on the hot path, so store writes here go through a thread
(`anyio.to_thread`) rather than holding the event loop while the writer
thread has the write lock.
"""

from __future__ import annotations

import json
from functools import partial
from typing import Any

from anyio import to_thread
from fastapi import Request
from fastapi.responses import Response

from router.answer_formats import FORMATS
from router.errors import UpstreamError
from router.proxy.api_errors import ApiError, bad_request, from_upstream
from router.proxy.bodies import read_object
from router.proxy.contexts import check_id, context_hash, context_text
from router.proxy.formats.chat_parsing import check_message
from router.proxy.gate import principal_of
from router.proxy.state import ProxyState
from router.store.base import ContextRecord

SMALL_BODY = 64 * 1024
MAX_EXPECTED_QUERIES = 1e9  # a registration's `expected_queries`, above 0


def _json(data: Any, status: int = 200) -> Response:
    return Response(json.dumps(data).encode(), status, media_type="application/json")


def _state_and_tenant(request: Request) -> tuple[ProxyState, str]:
    state: ProxyState = request.app.state.proxy
    return state, principal_of(request.scope).tenant


async def models(request: Request) -> Response:
    """The [[model]] list's names when there is one, else the upstream's own list."""
    state: ProxyState = request.app.state.proxy
    listing = state.models.listing()
    if listing is not None:
        return _json(listing)
    try:
        answer = await state.forwarder.get("/models")
    except UpstreamError as exc:
        return from_upstream(exc).response()
    return Response(answer.content, answer.status, media_type="application/json")


async def register_context(request: Request) -> Response:
    """POST /v1/contexts {"id"?, "context" | "messages", "expected_queries"?,
    "answer_format"?}: store it, queue it for sleep. The answer format ("number", "span",
    "text") picks the sleep prompt and how answers on it are asked for, read and checked;
    a context registered without one is a number context, as before formats existed."""
    state, tenant = _state_and_tenant(request)
    body = await read_object(request, state.config.max_body_bytes)
    context_id, text = _context_of(body)
    expected = _expected_queries(body)
    answer_format = _answer_format(body)
    limit = state.config.max_context_bytes
    if len(text.encode()) > limit:
        message = f"the context is larger than {limit} bytes, too large to think about"
        raise ApiError(413, message, param="context", code="context_too_large")
    record = await to_thread.run_sync(
        partial(state.store.register_context, answer_format=answer_format),
        tenant,
        context_id,
        text,
        expected,
    )
    state.contexts.forget(tenant, context_id)
    if record.sleep_status is None:
        await to_thread.run_sync(state.records.queue_sleep, record)
        record = state.store.get_context(tenant, context_id) or record
    return _json(context_view(record))


async def get_context(request: Request) -> Response:
    """Tenant-scoped: another tenant's id is as unknown as one that was never registered."""
    state, tenant = _state_and_tenant(request)
    context_id = request.path_params["context_id"]
    record = state.store.get_context(tenant, context_id)
    if record is None:
        raise ApiError(404, f"no context {context_id!r}", code="context_not_found")
    return _json(context_view(record))


async def feedback(request: Request) -> Response:
    """POST /v1/feedback {"request_id", "correct"}: a label for one of the tenant's requests."""
    state, tenant = _state_and_tenant(request)
    body = await read_object(request, SMALL_BODY)
    request_id, correct = body.get("request_id"), body.get("correct")
    if not isinstance(request_id, str) or not request_id:
        raise bad_request("'request_id' must be a non-empty string", param="request_id")
    if not isinstance(correct, bool):
        raise bad_request("'correct' must be true or false", param="correct")
    if not await to_thread.run_sync(_label, state, tenant, request_id, correct):
        raise ApiError(404, f"no request {request_id!r}", code="request_not_found")
    return _json({"request_id": request_id, "correct": correct})


async def health(request: Request) -> Response:
    state: ProxyState = request.app.state.proxy
    return _json({"status": "ok", "inflight": state.inflight.count})


async def ready(request: Request) -> Response:
    """Readiness, where /health is liveness: 503 while no upstream of the default model
    answers (its answer is kept ~2 s, so probes cannot flood the upstream)."""
    state: ProxyState = request.app.state.proxy
    reason = await state.models.readiness.check()
    if reason is None:
        return _json({"status": "ready"})
    return _json({"status": "unavailable", "reason": reason}, 503)


async def metrics(request: Request) -> Response:
    state: ProxyState = request.app.state.proxy
    state.metrics.records_dropped.set(state.records.writer.dropped)
    return Response(state.metrics.render(), media_type=state.metrics.content_type)


def context_view(record: ContextRecord) -> dict[str, Any]:
    return {
        "id": record.context_id,
        "object": "sleeptime.context",
        "version": record.version,
        "source": record.source,
        "seen": record.seen,
        "expected_queries": record.expected_queries,
        "answer_format": record.answer_format,
        "status": record.sleep_status,
        "learned_context": record.learned,
        "anticipated": record.anticipated or [],
        "sleep_tokens": record.sleep_tokens,
        "truncated_passes": record.truncated_passes,
        "error": record.error,
        "updated": record.updated,
    }


def _context_of(body: dict[str, Any]) -> tuple[str, str]:
    """(id, text). Registering text alone names it as a system message with that text would,
    so a later chat request that sends the text as its system prompt finds it implicitly."""
    given, messages = body.get("context"), body.get("messages")
    if isinstance(given, str) and given.strip():
        messages = [{"role": "system", "content": given}]
    elif isinstance(messages, list) and messages:
        for index, message in enumerate(messages):
            check_message(index, message)
    else:
        raise bad_request("send 'context' (a non-empty string) or 'messages' (an array)")
    name = body.get("id")
    if name is not None and not isinstance(name, str):
        raise bad_request("'id' must be a string", param="id")
    if name is None:
        return context_hash(messages), context_text(messages)
    return check_id(name, "id"), context_text(messages)


def _answer_format(body: dict[str, Any]) -> str | None:
    value = body.get("answer_format")
    if value is None:
        return None
    if not isinstance(value, str) or value not in FORMATS:
        known = ", ".join(sorted(FORMATS))
        raise bad_request(f"'answer_format' must be one of {known}", param="answer_format")
    return value


def _expected_queries(body: dict[str, Any]) -> float | None:
    """How many queries the client expects: the policy's sleep rule needs it before they come."""
    value = body.get("expected_queries")
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise bad_request("'expected_queries' must be a number", param="expected_queries")
    if not 0 < value <= MAX_EXPECTED_QUERIES:
        raise bad_request(
            f"'expected_queries' must be above 0 and at most {MAX_EXPECTED_QUERIES:g}",
            param="expected_queries",
        )
    return float(value)


def _label(state: ProxyState, tenant: str, request_id: str, correct: bool) -> bool:
    """A label may arrive before its record left the writer's queue: flush once, then retry."""
    if state.store.add_feedback(tenant, request_id, correct):
        return True
    state.records.writer.flush()
    return state.store.add_feedback(tenant, request_id, correct)
