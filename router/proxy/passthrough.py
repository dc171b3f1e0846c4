"""`/v1/embeddings` and `/v1/responses`: passed through, metered, never routed.

Sleep-time routing needs a chat's messages; these endpoints have none to route on, so
they skip the routed pipeline and do only what every request gets: the tenant's
in-flight limit, the shared body reader, the model resolved by the model list (aliases
replaced, fallbacks tried), the answer relayed byte for byte (a Responses stream event
by event), one record (route "pass", tokens from the upstream's usage) and the metrics.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from fastapi import Request
from fastapi.responses import Response

from router.errors import UpstreamError
from router.proxy.api_errors import ApiError, bad_request, from_upstream
from router.proxy.bodies import load_object, parse_body, read_body
from router.proxy.client_wait import ClientClosed, client_closed, deadline_for, unless_client_leaves
from router.proxy.endpoints import _state_and_tenant
from router.proxy.fallback import Route, model_header
from router.proxy.pass_stream import PassStream
from router.proxy.state import ProxyState
from router.store.base import RequestRecord

PASS = "pass"
JSON = "application/json"
Tokens = tuple[int, int, int]  # prompt, completion, cached prompt


def embedding_tokens(usage: Any) -> Tokens:
    """Embeddings report prompt tokens only."""
    return (_count(usage, "prompt_tokens"), 0, 0)


def response_tokens(usage: Any) -> Tokens:
    """The Responses API names them input and output tokens."""
    details = usage.get("input_tokens_details") if isinstance(usage, dict) else None
    cached = _count(details, "cached_tokens")
    return (_count(usage, "input_tokens"), _count(usage, "output_tokens"), cached)


@dataclass(frozen=True)
class Endpoint:
    path: str  # the upstream's path
    tokens: Callable[[Any], Tokens]  # the answer's `usage` in tokens
    streams: bool = False


EMBEDDINGS = Endpoint("/embeddings", embedding_tokens)
RESPONSES = Endpoint("/responses", response_tokens, streams=True)


@dataclass
class PassCall:
    """One pass-through request and what its record will say."""

    state: ProxyState
    endpoint: Endpoint
    tenant: str
    request_id: str
    model: str | None = None
    started: float = field(default_factory=time.perf_counter)

    def headers(self) -> dict[str, str]:
        headers = {"X-Request-Id": self.request_id, "X-Sleeptime-Route": PASS}
        model_header(headers, self.model)
        return headers

    def answered_by(self, name: str) -> None:
        self.model = name

    def finish(self, status: int, error_code: str | None = None, usage: Any = None) -> None:
        prompt, completion, cached = self.endpoint.tokens(usage)
        seconds = time.perf_counter() - self.started
        state = self.state
        price = state.models.price_of(self.model) if self.model else None
        usd = float(price.dollars(prompt, completion, cached)) if price is not None else 0.0
        state.metrics.observe(PASS, status, seconds)
        state.metrics.count_tokens(prompt, completion, cached)
        state.charge(self.tenant, prompt + completion, usd)
        state.records.record(
            RequestRecord(
                tenant=self.tenant,
                request_id=self.request_id,
                time=time.time(),
                route=PASS,
                status=status,
                model=self.model,
                prompt_tokens=prompt,
                completion_tokens=completion,
                cached_tokens=cached,
                latency_ms=seconds * 1000.0,
                cost=state.costs.paper_cost(PASS, completion),
                error_code=error_code,
                cost_usd=usd,
            )
        )

    def fail(self, error: ApiError) -> Response:
        self.finish(error.status, error.code)
        return error.response({"X-Request-Id": self.request_id})


async def embeddings(request: Request) -> Response:
    return await _pass(request, EMBEDDINGS)


async def responses(request: Request) -> Response:
    return await _pass(request, RESPONSES)


async def _pass(request: Request, endpoint: Endpoint) -> Response:
    state, tenant = _state_and_tenant(request)
    call = PassCall(state, endpoint, tenant, state.records.new_id())
    if not state.limits.enter(tenant):
        return call.fail(state.limits.refusal())
    try:
        response = await _serve(request, call)
    except BaseException:
        state.limits.leave(tenant)
        raise
    if isinstance(response, PassStream):  # leaves when the stream ends
        response.on_close = lambda: state.limits.leave(tenant)
    else:
        state.limits.leave(tenant)
    return response


async def _serve(request: Request, call: PassCall) -> Response:
    try:
        body, route, stream = await _read(request, call)
    except ApiError as error:
        return call.fail(error)
    upstream = route.caller(call.answered_by)
    timeout_s = call.state.config.settings.upstream_timeout_s
    deadline = deadline_for(request.headers, timeout_s)  # one for the fallbacks too
    path, inflight = call.endpoint.path, call.state.inflight
    inflight.begin()
    try:
        if stream:
            opening = upstream.open_stream(path, body, deadline=deadline)
            opened = await unless_client_leaves(request.receive, opening)
            return PassStream(call, opened, on_end=inflight.end)
        posting = upstream.post(path, body, deadline=deadline)
        answer = await unless_client_leaves(request.receive, posting)
    except UpstreamError as exc:
        inflight.end()
        return call.fail(from_upstream(exc))
    except ClientClosed:
        inflight.end()
        return call.fail(client_closed())
    inflight.end()
    call.finish(answer.status, usage=answer.data.get("usage"))
    return Response(answer.content, answer.status, call.headers(), media_type=JSON)


async def _read(request: Request, call: PassCall) -> tuple[bytes, Route, bool]:
    """(the body to send, the model's route, whether to stream): the client's body as it
    came, or re-encoded with the upstream's name for the model."""
    raw = await read_body(request, call.state.config.max_body_bytes)
    data = await parse_body(request, raw, load_object)
    model = data.get("model")
    if model is not None and not isinstance(model, str):
        raise bad_request("'model' must be a string", param="model")
    route = await call.state.models.resolve(model)
    call.model = route.name
    if route.replaced:
        data["model"] = route.model
        raw = json.dumps(data).encode()
    stream = data.get("stream")
    if stream is not None and not isinstance(stream, bool):
        raise bad_request("'stream' must be true or false", param="stream")
    return raw, route, bool(stream) and call.endpoint.streams


def _count(usage: Any, key: str) -> int:
    value = usage.get(key) if isinstance(usage, dict) else None
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else 0
