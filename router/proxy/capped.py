"""A cheap attempt the proxy capped: served whole, or escalated when cut at its budget.

A rung's budget is how a cheap route stays cheap: it caps `max_tokens` below what the
client allowed (or sets one the client left open). An answer cut there would be the
proxy's truncation, never the client's choice, so the attempt is asked whole (a
streaming client's too: nothing reaches the client before its finish_reason is known)
and, when it ends with finish_reason "length", discarded: the request goes full at
the client's own budget (`routing.escalated`), as a checked answer whose voters
disagree does, and its tokens are charged to the request (`exchange.spent_before`).
A streaming client then gets the full answer's stream as it arrives, or the whole
cheap answer as a stream of its own (`replies.served`): a capped answer is short, so
waiting for it costs little latency, and no truncated answer is ever sent.
"""

from __future__ import annotations

from fastapi.responses import Response

from router.errors import UpstreamError
from router.proxy import replies
from router.proxy.api_errors import from_upstream
from router.proxy.client_wait import unless_client_leaves
from router.proxy.exchange import Exchange
from router.proxy.formats.adapter import Outgoing, Parsed
from router.proxy.routing import escalated

CUT = "its answer was cut at the rung's budget"


async def attempt(exchange: Exchange, request: Parsed, outgoing: Outgoing) -> Response | Outgoing:
    """The response to send, or the body to send in full once the attempt was cut."""
    state, fmt = exchange.state, exchange.format
    state.inflight.begin()
    try:
        body = fmt.not_streamed(outgoing.body)
        call = exchange.upstream.post(fmt.upstream_path, body, deadline=exchange.deadline)
        answer = await unless_client_leaves(exchange.receive, call)
    except UpstreamError as exc:
        return exchange.fail(from_upstream(exc))
    finally:
        state.inflight.end()
    usage = fmt.usage_of(answer.data) if answer.status == 200 else None
    if answer.status == 200 and fmt.cut_short(answer.data):
        return escalate(exchange, request, usage)
    if answer.status == 200 and request.stream:
        return replies.served(exchange, request, answer.data, usage)
    exchange.completion_tokens = exchange.finish(answer.status, usage=usage)
    return replies.json_response(exchange, answer.content, answer.status)


def escalate(exchange: Exchange, request: Parsed, usage: object) -> Outgoing:
    """The cut answer discarded, its tokens kept: the body that asks in full."""
    fmt = exchange.format
    exchange.spent_before = fmt.add_usage(exchange.spent_before, usage)
    exchange.decision = escalated(exchange.decision, CUT)
    exchange.capped, exchange.escalated = False, True
    exchange.state.metrics.escalations.inc()
    rewrite = fmt.rewrite(request, exchange.decision, exchange.context)
    return exchange.outgoing(request, rewrite)
