"""POST /v1/chat/completions: parse, identify the context, route, forward, record.

The hot path does, in order: read and check the body, hash the context part,
one indexed SQLite read (the tenant's context record), the router's decision,
the upstream call, and a queue append for the record. The request body goes
out as the client's own bytes unless something had to change (the model
alias, the sleeptime metadata key, enrichment, stream usage).
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import anyio
from fastapi import Request
from fastapi.responses import Response, StreamingResponse

from router.errors import UpstreamError
from router.ladder import rung
from router.proxy import synth
from router.proxy.checked import add_usage, agree, not_streamed, usage_tokens
from router.proxy.contexts import HEADER, ContextRef, explicit_name, identify
from router.proxy.errors import ApiError, from_upstream
from router.proxy.parsing import CONTEXT_KEY, ChatRequest, parse_chat, read_body
from router.proxy.relay import StreamRelay
from router.proxy.routing import PASS_THROUGH, RouteDecision, rewrite
from router.proxy.state import ProxyState
from router.store.base import ContextRecord, RequestRecord
from router.upstream import UpstreamStream

CHAT_PATH = "/chat/completions"
log = logging.getLogger("sleeptime.proxy")


@dataclass
class Exchange:
    """One request on its way through, and what its record will say."""

    state: ProxyState
    tenant: str
    request_id: str
    started: float = field(default_factory=time.perf_counter)
    ref: ContextRef | None = None
    context: ContextRecord | None = None
    decision: RouteDecision = PASS_THROUGH
    model: str | None = None
    completion_tokens: int | None = None  # once known, for the tokens-saved header
    check: str | None = None  # a checked answer's outcome: "agreed" or "disagreed"
    spent_before: dict[str, Any] | None = None  # usage of a check that sent the query full

    def headers(self) -> dict[str, str]:
        headers = {"X-Request-Id": self.request_id, "X-Sleeptime-Route": self.decision.route}
        if self.ref is not None:
            headers["X-Sleeptime-Context"] = self.ref.context_id
            version = self.context.version if self.context is not None else 1
            headers["X-Sleeptime-Context-Version"] = str(version)
        if self.decision.rung:
            headers["X-Sleeptime-Rung"] = self.decision.rung
        if self.check:
            headers["X-Sleeptime-Check"] = self.check
        saved = self.state.tokens_saved(self.tenant, self.decision.route, self.completion_tokens)
        if saved is not None:
            headers["X-Sleeptime-Tokens-Saved"] = str(saved)
        if self.decision.scores:
            headers["X-Sleeptime-Scores"] = json.dumps(
                dict(self.decision.scores), separators=(",", ":")
            )
        return headers

    def finish(self, status: int, error_code: str | None = None, *, usage: Any = None) -> int:
        """Records the request; returns its completion tokens. `usage` covers every upstream
        call of the request; a failed one reports none, so what a check spent is kept."""
        prompt, completion, cached = usage_tokens(usage if usage is not None else self.spent_before)
        seconds = time.perf_counter() - self.started
        route = self.decision.route
        if status == 200:
            self.state.saw_completion(self.tenant, route, completion)
        self.state.metrics.observe(route, status, seconds)
        self.state.metrics.count_tokens(prompt, completion, cached)
        self.state.record(
            RequestRecord(
                tenant=self.tenant,
                request_id=self.request_id,
                time=time.time(),
                route=route,
                status=status,
                context_id=self.ref.context_id if self.ref else None,
                context_version=self.context.version if self.context else None,
                rung=self.decision.rung,
                model=self.model,
                prompt_tokens=prompt,
                completion_tokens=completion,
                cached_tokens=cached,
                latency_ms=seconds * 1000.0,
                cost=self.state.cost(completion),
                error_code=error_code,
            )
        )
        return completion

    def fail(self, error: ApiError) -> Response:
        self.finish(error.status, error_code=error.code)
        return error.response({"X-Request-Id": self.request_id})


async def chat_completions(request: Request) -> Response:
    state: ProxyState = request.app.state.proxy
    authorization = request.headers.get("authorization")
    exchange = Exchange(state, state.tenants.identify(authorization), state.new_request_id())
    if not state.limits.enter(exchange.tenant):
        return exchange.fail(state.limits.refusal())
    try:
        response = await _chat(request, state, exchange)
    except BaseException:
        state.limits.leave(exchange.tenant)
        raise
    if isinstance(response, _RelayResponse):
        response.on_close = lambda: state.limits.leave(exchange.tenant)
    else:
        state.limits.leave(exchange.tenant)
    return response


async def _chat(request: Request, state: ProxyState, exchange: Exchange) -> Response:
    try:
        chat = parse_chat(await read_body(request, state.config.max_body_bytes))
        name = explicit_name(request.headers.get(HEADER), chat.context_name)
    except ApiError as error:
        return exchange.fail(error)
    exchange.ref, query = identify(chat.messages, name)
    if _oversized(exchange.ref, chat, state.config.max_context_bytes):
        exchange.ref = None  # answered as it is; too big to store or think about
    exchange.context = state.lookup(exchange.tenant, exchange.ref)
    exchange.decision, messages = state.route(
        exchange.tenant, exchange.context, query, chat.messages
    )
    outgoing = await _prepare(state, exchange, chat, messages)
    if isinstance(outgoing, Response):
        return outgoing
    body, strip_usage = outgoing
    if exchange.decision.route == "cached" and exchange.decision.answer is not None:
        return _cached(exchange, chat, exchange.decision.answer)
    if exchange.decision.checked:
        try:
            checked = await _checked(exchange, chat, body)
            if checked is not None:
                return checked
            messages = _go_full(exchange, chat)
        except Exception:  # a user's request never fails because of sleeptime
            state.metrics.fallbacks.inc()
            log.exception("checked answer failed; the request goes through as pass-through")
            exchange.decision, messages = PASS_THROUGH, None
        outgoing = await _prepare(state, exchange, chat, messages)
        if isinstance(outgoing, Response):
            return outgoing
        body, strip_usage = outgoing
    if chat.stream:
        return await _stream(exchange, body, strip_usage)
    return await _complete(exchange, body)


async def _prepare(
    state: ProxyState,
    exchange: Exchange,
    chat: ChatRequest,
    messages: list[dict[str, Any]] | None,
) -> tuple[bytes, bool] | Response:
    """`_outgoing`, or the error response the client gets when the body cannot be built."""
    try:
        return await _outgoing(state, exchange, chat, messages)
    except (UpstreamError, LookupError) as exc:
        return exchange.fail(_model_error(exc))
    except ApiError as error:
        return exchange.fail(error)


async def _checked(exchange: Exchange, chat: ChatRequest, body: bytes) -> Response | None:
    """The cheap answer on c' if its voters state the same number (a second answer at the
    check rung, asked side by side, and the nearest anticipated answer); None when not (or
    when a call failed), having kept what the calls cost."""
    state, decision = exchange.state, exchange.decision
    bodies = [not_streamed(body)]
    if decision.check_rung is not None:
        check = RouteDecision("enriched", rung=decision.check_rung)
        check_messages = rewrite(check, exchange.context, chat.messages)
        check_body, _ = await _outgoing(state, exchange, chat, check_messages, decision.check_rung)
        bodies.append(not_streamed(check_body))
    state.begin()
    try:
        answers = await asyncio.gather(
            *(state.forwarder.post(CHAT_PATH, b) for b in bodies), return_exceptions=True
        )
    finally:
        state.end()
    done = [a.data for a in answers if not isinstance(a, BaseException) and a.status == 200]
    spent = add_usage(*(d.get("usage") for d in done))
    agreed = len(done) == len(bodies) and agree(*done, anticipated=decision.check_answer)
    exchange.check = "agreed" if agreed else "disagreed"
    state.metrics.checks.labels(exchange.check).inc()
    if not agreed:
        exchange.spent_before = spent
        return None
    served = {**done[0], "usage": spent}
    exchange.completion_tokens = exchange.finish(200, usage=spent)
    if chat.stream:
        text = served["choices"][0]["message"].get("content") or ""
        model = str(served.get("model") or exchange.model)
        events = synth.stream_events(
            exchange.request_id, model, text, chat.include_usage, spent=spent
        )
        return StreamingResponse(
            iter(events), headers=exchange.headers(), media_type="text/event-stream"
        )
    return Response(
        json.dumps(served).encode(), 200, exchange.headers(), media_type="application/json"
    )


def _go_full(exchange: Exchange, chat: ChatRequest) -> list[dict[str, Any]] | None:
    """The checked answer failed its check: the client's messages at the fallback rung."""
    decision = exchange.decision
    exchange.decision = RouteDecision(
        "full",
        rung=decision.fallback_rung,
        scores=decision.scores,
        reason=f"{decision.reason}; check disagreed",
    )
    return rewrite(exchange.decision, exchange.context, chat.messages)


async def _complete(exchange: Exchange, body: bytes) -> Response:
    state = exchange.state
    state.begin()
    try:
        answer = await state.forwarder.post(CHAT_PATH, body)
    except UpstreamError as exc:
        return exchange.fail(from_upstream(exc))
    finally:
        state.end()
    content, usage = answer.content, answer.data.get("usage")
    if exchange.spent_before and answer.status == 200:
        usage = add_usage(usage, exchange.spent_before)
        content = json.dumps({**answer.data, "usage": usage}).encode()
    exchange.completion_tokens = exchange.finish(answer.status, usage=usage)
    return Response(content, answer.status, exchange.headers(), media_type="application/json")


async def _stream(exchange: Exchange, body: bytes, strip_usage: bool) -> Response:
    state = exchange.state
    state.begin()
    try:
        upstream = await state.forwarder.open_stream(CHAT_PATH, body)
    except UpstreamError as exc:
        state.end()
        return exchange.fail(from_upstream(exc))
    return _RelayResponse(exchange, upstream, strip_usage)


class _RelayResponse(StreamingResponse):
    """Cleans up in `__call__`, not in the body iterator, which never starts at all when the
    client leaves before the first event: the connection, the in-flight count and the
    record are settled the same way however the stream ends."""

    def __init__(self, exchange: Exchange, upstream: UpstreamStream, strip_usage: bool) -> None:
        relay = StreamRelay(
            upstream,
            strip_usage=strip_usage,
            before_done=lambda status, code, usage: exchange.finish(status, code, usage=usage),
            spent_before=exchange.spent_before,
        )
        self._events = relay.events()
        super().__init__(self._events, headers=exchange.headers(), media_type="text/event-stream")
        self._exchange = exchange
        self._relay = relay
        self.on_close: Callable[[], None] = lambda: None

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            with anyio.CancelScope(shield=True):
                await self._events.aclose()
                await self._relay.aclose()
            self._exchange.state.end()
            self.on_close()
            if not self._relay.settled:  # the client left before [DONE]
                self._exchange.finish(*self._relay.outcome(), usage=self._relay.usage)


def _cached(exchange: Exchange, chat: ChatRequest, answer: str) -> Response:
    model, request_id = exchange.model or "sleeptime", exchange.request_id
    exchange.completion_tokens = 0  # the upstream wrote none of it
    if chat.stream:
        events = synth.stream_events(request_id, model, answer, chat.include_usage)
        exchange.finish(200, usage=synth.usage(answer))
        return StreamingResponse(
            iter(events), headers=exchange.headers(), media_type="text/event-stream"
        )
    body = synth.completion(request_id, model, answer)
    exchange.finish(200, usage=body["usage"])
    return Response(
        json.dumps(body).encode(), 200, exchange.headers(), media_type="application/json"
    )


async def _outgoing(
    state: ProxyState,
    exchange: Exchange,
    chat: ChatRequest,
    messages: list[dict[str, Any]] | None,
    budget: str | None = None,
) -> tuple[bytes, bool]:
    """(body to send, whether the proxy added stream usage the client did not ask for).
    `budget`: a rung other than the decision's (the check of a checked answer)."""
    body = chat.body
    changes: dict[str, Any] = {}
    model = body.get("model")
    if not model or model == "sleeptime":
        model = changes["model"] = await state.upstream_model()
    elif not await _accepts(state, model):
        message = f"The model '{model}' does not exist or you do not have access to it."
        raise ApiError(404, message, param="model", code="model_not_found")
    exchange.model = model
    if messages is not None:
        changes["messages"] = messages
    budget = budget or exchange.decision.rung
    if budget:
        changes.update(_budget(body, rung(budget).max_tokens))
    metadata = body.get("metadata")
    if isinstance(metadata, dict) and CONTEXT_KEY in metadata:
        changes["metadata"] = {k: v for k, v in metadata.items() if k != CONTEXT_KEY} or None
    add_usage = chat.stream and not chat.include_usage and state.config.stream_usage
    if add_usage:
        changes["stream_options"] = {**(body.get("stream_options") or {}), "include_usage": True}
    if not changes:
        return chat.raw, False
    merged = {k: v for k, v in {**body, **changes}.items() if v is not None or k not in changes}
    return json.dumps(merged).encode(), add_usage


def _budget(body: dict[str, Any], limit: int) -> dict[str, int]:
    """The rung's token budget, or the client's where the client asked for less."""
    given = {k: body[k] for k in ("max_tokens", "max_completion_tokens") if body.get(k)}
    if not given:
        return {"max_tokens": limit}
    return {k: min(v, limit) for k, v in given.items()}


def _oversized(ref: ContextRef | None, chat: ChatRequest, limit: int) -> bool:
    """The body's size bounds the context's, so most requests never build the text."""
    return ref is not None and len(chat.raw) > limit and len(ref.text.encode()) > limit


async def _accepts(state: ProxyState, model: str) -> bool:
    config = state.config
    if config.models:
        return model in config.models
    if config.settings.uses_local_model:
        return model == await state.upstream_model()
    return True


def _model_error(exc: Exception) -> ApiError:
    message = f"cannot resolve the upstream model for 'sleeptime': {exc}"
    return ApiError(502, message, type="upstream_error", code="upstream_model_unknown")
