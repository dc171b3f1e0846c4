"""The request pipeline every routed endpoint shares, whatever its JSON looks like.

One request goes through these stages, in order, each a function below:

    admit      the tenant the gate found (`router.proxy.gate`) and its in-flight limit:
               429 before the body is read
    read       the body, within `max_body_bytes`, parsed by the format adapter
    identify   the context (named by header or body, else hashed) and the query
    look up    the tenant's record of that context (kept `context_cache_s`), and a
               sighting for the writer (a context seen twice is queued for sleep)
    opt in     whether the request is routed at all (`opt_in`: its header, its model)
    route      what may not be routed passes through as sent (`routable`), else the
               router's decision and the format's rewrite; whatever they raise, the
               request goes full, unchanged, and the fallback is counted
    model      what "sleeptime" names upstream, or 404 for a model not served
    call       a cached answer (no upstream call), a checked answer (cheap voters
               first, full when they disagree), a capped attempt (full when cut at its
               budget, `capped`), a streamed or a plain upstream call; all within one
               deadline, cancelled (499) if the client leaves (`client_wait`)
    finish     the record, metrics and `X-Sleeptime-*` headers (`Exchange.finish`)

The hot path is: hash the context part, one cached store read, the router, the
upstream call, a journal append. Everything shaped like a body's JSON is the format
adapter's (`router.proxy.formats`): this module never reads a field of one.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from fastapi import Request
from fastapi.responses import Response

from router.errors import UpstreamError
from router.proxy import capped, checked, replies
from router.proxy.api_errors import ApiError, from_upstream
from router.proxy.bodies import read_parsed
from router.proxy.client_wait import ClientClosed, client_closed, deadline_for, unless_client_leaves
from router.proxy.contexts import HEADER, explicit_name
from router.proxy.exchange import Exchange
from router.proxy.formats.adapter import FormatAdapter, Outgoing, Parsed, Rewrite
from router.proxy.gate import Principal, principal_of
from router.proxy.opt_in import HEADER as ROUTING
from router.proxy.opt_in import rules_of
from router.proxy.routing import PASS_THROUGH
from router.proxy.state import ProxyState
from router.proxy.streaming import RelayResponse, stream
from router.store.base import ContextRecord

log = logging.getLogger("sleeptime.proxy")


class Pipeline:
    """`Pipeline(format).handle` is the endpoint of one routed path."""

    def __init__(self, format: FormatAdapter[Any]) -> None:
        self.format = format

    async def handle(self, request: Request) -> Response:
        state: ProxyState = request.app.state.proxy
        exchange = _admit(state, self.format, principal_of(request.scope))
        if not state.limits.enter(exchange.tenant):
            return exchange.fail(state.limits.refusal())
        try:
            response = await _serve(request, exchange)
        except BaseException:
            state.limits.leave(exchange.tenant)
            raise
        if isinstance(response, RelayResponse):  # leaves when the stream ends
            response.on_close = lambda: state.limits.leave(exchange.tenant)
        else:
            state.limits.leave(exchange.tenant)
        return response


def _admit(state: ProxyState, format: FormatAdapter[Any], principal: Principal) -> Exchange:
    """The gate (`router.proxy.gate`) checked the key, its rates and its budget."""
    return Exchange(state, format, principal.tenant, state.records.new_id())


async def _serve(request: Request, exchange: Exchange) -> Response:
    try:
        parsed, name = await _read(request, exchange)
    except ApiError as error:
        return exchange.fail(error)
    query = _identify(exchange, parsed, name)
    exchange.context = _look_up(exchange)
    try:
        exchange.routing = _opt_in(exchange, request, parsed)
        rewrite = _route(exchange, parsed, query)
        await _resolve_model(exchange, parsed)
    except ApiError as error:
        return exchange.fail(error)
    timeout_s = exchange.state.config.settings.upstream_timeout_s
    exchange.deadline = deadline_for(request.headers, timeout_s)  # one for every upstream call
    exchange.receive = request.receive
    return await _call(exchange, parsed, exchange.outgoing(parsed, rewrite))


async def _read(request: Request, exchange: Exchange) -> tuple[Parsed, str | None]:
    """(the parsed request, the context it names, if any: the header wins over the body)."""
    limit = exchange.state.config.max_body_bytes
    parsed = await read_parsed(request, exchange.format.parse, limit)
    return parsed, explicit_name(request.headers.get(HEADER), parsed.context_name)


def _identify(exchange: Exchange, parsed: Parsed, name: str | None) -> str:
    """The query; the context goes on the exchange, unless too big to store or think about
    (the body's size bounds the context's, so most requests never build its text)."""
    ref, query = exchange.format.identify(parsed, name)
    limit = exchange.state.config.max_context_bytes
    if ref is not None and len(parsed.raw) > limit and len(ref.text.encode()) > limit:
        ref = None  # answered as it is
    exchange.ref = ref
    return query


def _look_up(exchange: Exchange) -> ContextRecord | None:
    """The context as it was before this request; the sighting goes to the writer after the
    read, so this request is not yet counted."""
    state, ref = exchange.state, exchange.ref
    if ref is None:
        return None
    known = state.contexts.lookup(exchange.tenant, ref.context_id)
    state.records.sighted(exchange.tenant, ref)
    return known


def _opt_in(exchange: Exchange, request: Request, parsed: Parsed) -> str:
    """The routing that applies: "policy" or "off" (ApiError: a header that says neither)."""
    return rules_of(exchange.state).routing(request.headers.get(ROUTING), parsed.model)


def _route(exchange: Exchange, parsed: Parsed, query: str) -> Rewrite:
    """Never raises: a router (or a rewrite) that fails sends the request through unchanged.
    A request that did not opt in, or that the router may not touch, never reaches it."""
    state, fmt = exchange.state, exchange.format
    if exchange.routing != "policy":
        return {}
    try:
        why = fmt.unroutable(parsed, exchange.context, rules_of(state).formats)
        if why is not None:
            exchange.unroutable = why
            state.metrics.passed_through.labels(why).inc()
            return {}
        decision = state.router.decide(exchange.tenant, exchange.context, query)
        rewrite = fmt.rewrite(parsed, decision, exchange.context)
        lowered = decision.route != "cached" and fmt.lowers_budget(parsed, rewrite)
    except Exception:
        state.metrics.fallbacks.inc()
        log.exception("router failed; the request goes through as pass-through")
        decision, rewrite, lowered = PASS_THROUGH, {}, False
    exchange.decision, exchange.capped = decision, lowered
    return rewrite


async def _resolve_model(exchange: Exchange, parsed: Parsed) -> None:
    """The model's route: the name it is recorded by, what its upstream is asked for, and the
    upstream the call stages use (a fallback that answers renames the record's model)."""
    route = await exchange.state.models.resolve(parsed.model)
    exchange.model = route.name
    exchange.model_override = route.model if route.replaced else None
    exchange.upstream = route.caller(lambda name: setattr(exchange, "model", name))


async def _call(exchange: Exchange, parsed: Parsed, outgoing: Outgoing) -> Response:
    """Every upstream call shares `exchange.deadline`; a client that leaves cancels them (499)."""
    decision = exchange.decision
    if decision.route == "cached" and decision.answer is not None:
        return replies.cached(exchange, parsed, decision.answer)
    try:
        if decision.checked:
            answered = await _checked(exchange, parsed, outgoing)
        elif exchange.capped:
            answered = await capped.attempt(exchange, parsed, outgoing)
        else:
            answered = outgoing
        if isinstance(answered, Response):
            return answered
        outgoing = answered
        if parsed.stream:
            return await stream(exchange, outgoing)
        return await _complete(exchange, outgoing)
    except ClientClosed:
        return exchange.fail(client_closed())


async def _checked(exchange: Exchange, parsed: Parsed, outgoing: Outgoing) -> Response | Outgoing:
    """The checked answer, or the body to send full when its voters disagree."""
    try:
        served = await checked.answer(exchange, parsed, outgoing)
        if served is not None:
            return served
        rewrite = checked.go_full(exchange, parsed)
    except ClientClosed:
        raise
    except Exception:  # a user's request never fails because of sleeptime
        exchange.state.metrics.fallbacks.inc()
        log.exception("checked answer failed; the request goes through as pass-through")
        exchange.decision, rewrite = PASS_THROUGH, {}
    return exchange.outgoing(parsed, rewrite)


async def _complete(exchange: Exchange, outgoing: Outgoing) -> Response:
    state, fmt = exchange.state, exchange.format
    state.inflight.begin()
    try:
        call = exchange.upstream.post(fmt.upstream_path, outgoing.body, deadline=exchange.deadline)
        answer = await unless_client_leaves(exchange.receive, call)
    except UpstreamError as exc:
        return exchange.fail(from_upstream(exc))
    finally:
        state.inflight.end()
    content, usage = answer.content, fmt.usage_of(answer.data)
    if exchange.spent_before and answer.status == 200:
        usage = fmt.add_usage(usage, exchange.spent_before)
        content = json.dumps(fmt.with_usage(answer.data, usage)).encode()
    exchange.completion_tokens = exchange.finish(answer.status, usage=usage)
    return replies.json_response(exchange, content, answer.status)
