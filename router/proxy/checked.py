"""A checked answer on the learned context: cheap voters that must agree.

One cheap answer on c' is right less often than full reasoning on c, and no
score picks out the queries where it is right. Voters that reach the same final
number pick them out: a second cheap answer on c' at another rung (asked side by
side), and the nearest anticipated answer, computed at sleep time, so free at
test time. In the Multi-Query GSM8K `program` table, two rungs that agreed were
right as often as full reasoning on those queries (live on 48 other contexts they
lagged it); the cheap answer and the anticipated one that agreed were right more
often than full reasoning (35 vs 29 of 88 queries). The proxy serves such an
answer and sends the others to full reasoning; what all the calls cost is what
the client's usage says.

An answer without a final number cannot be checked this way: it goes full, and so
does one cut at its rung's budget (`X-Sleeptime-Check: cut`), whatever it states. The
full answer carries the client's own budget. The flow is the same for every format;
the format reads each answer's final number.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

from fastapi.responses import Response

from router.answer_formats import AnswerFormat, answer_format, of_context
from router.proxy import replies
from router.proxy.client_wait import unless_client_leaves
from router.proxy.exchange import Exchange
from router.proxy.formats.adapter import Outgoing, Parsed, Rewrite
from router.proxy.routing import RouteDecision, escalated


def agree(values: Sequence[str | None], answer: AnswerFormat | None = None) -> bool:
    """Every voter states the same final answer, as the context's answer format compares
    two (numbers by value by default), and states one at all."""
    same = (answer or answer_format(None)).agree
    first = values[0] if values else None
    return first is not None and all(v is not None and same(v, first) for v in values)


async def answer(exchange: Exchange, request: Parsed, outgoing: Outgoing) -> Response | None:
    """The cheap answer on c' if its voters state the same number (a second answer at the
    check rung, asked side by side, and the nearest anticipated answer); None when not (or
    when a call failed), having kept what the calls cost in `exchange.spent_before`."""
    fmt, decision = exchange.format, exchange.decision
    bodies = [fmt.not_streamed(outgoing.body)]
    if decision.check_rung is not None:
        check = RouteDecision("enriched", rung=decision.check_rung)
        rewrite = fmt.rewrite(request, check, exchange.context)
        bodies.append(fmt.not_streamed(exchange.outgoing(request, rewrite).body))
    done = await _ask(exchange, bodies)
    spent = fmt.add_usage(*(fmt.usage_of(d) for d in done))
    answer_fmt = of_context(exchange.context)
    votes = [fmt.final_answer(d, answer_fmt) for d in done]
    if decision.check_answer is not None:
        votes.append(decision.check_answer)
    agreed = len(done) == len(bodies) and agree(votes, answer_fmt)
    # Cut at the budget the proxy set: never served, even where its number agrees.
    cut = exchange.capped and bool(done) and fmt.cut_short(done[0])
    exchange.check = "cut" if cut else "agreed" if agreed else "disagreed"
    exchange.state.metrics.checks.labels(exchange.check).inc()
    if cut or not agreed:
        exchange.spent_before = spent
        exchange.escalated = cut
        return None
    return replies.served(exchange, request, done[0], spent)


def go_full(exchange: Exchange, request: Parsed) -> Rewrite:
    """The checked answer failed its check: the client's request at the fallback rung's
    instruction and the client's own budget."""
    why = "check disagreed"
    if exchange.escalated:
        why = "its answer was cut at the rung's budget"
        exchange.state.metrics.escalations.inc()
    exchange.decision = escalated(exchange.decision, why)
    return exchange.format.rewrite(request, exchange.decision, exchange.context)


async def _ask(exchange: Exchange, bodies: list[bytes]) -> list[dict[str, Any]]:
    """The answers that came back whole (status 200), side by side, within the request's
    deadline; ClientClosed (the calls cancelled) when the client leaves first."""
    state, path = exchange.state, exchange.format.upstream_path
    upstream = exchange.upstream or state.forwarder
    calls = (upstream.post(path, b, deadline=exchange.deadline) for b in bodies)
    state.inflight.begin()
    try:
        answers = await unless_client_leaves(
            exchange.receive, asyncio.gather(*calls, return_exceptions=True)
        )
    finally:
        state.inflight.end()
    return [a.data for a in answers if not isinstance(a, BaseException) and a.status == 200]
