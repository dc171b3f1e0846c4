"""Routing: what one query gets, decided per request; the policy plugs in here later.

A `Router` sees the tenant, that tenant's record of the request's context (or
None) and the query, and returns a `RouteDecision`:

    full      forward the request as the client sent it
    enriched  add the learned context c' to the request, keep the client's parameters
    cached    answer with an anticipated answer without calling the upstream

`rewrite` turns a decision into the messages to send. The proxy calls both
inside a guard: whatever a router raises, the request goes through as
"full" (a user's request never fails because of sleeptime), and the fallback
is counted in the metrics.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from policies import Route
from router.answering import NOTES_HINT
from router.ladder import Rung, rung
from router.store.base import ContextRecord


@dataclass(frozen=True)
class RouteDecision:
    route: Route = "full"
    rung: str | None = None  # a name from router.ladder, when the router chose one
    answer: str | None = None  # the answer to serve on the "cached" route
    # "enriched" only: served only if an answer on c' at this rung, and this anticipated answer,
    # agree with it (router.proxy.checked); otherwise the query goes full at `fallback_rung`.
    check_rung: str | None = None
    check_answer: str | None = None
    fallback_rung: str | None = None
    scores: Mapping[str, float] = field(default_factory=dict)
    reason: str = ""

    @property
    def checked(self) -> bool:
        voters = self.check_rung is not None or self.check_answer is not None
        return self.route == "enriched" and voters


PASS_THROUGH = RouteDecision("full", reason="pass-through")


class Router(Protocol):
    def decide(self, tenant: str, context: ContextRecord | None, query: str) -> RouteDecision: ...


class PassThroughRouter:
    """Every request goes to the upstream unchanged: the proxy as a pure meter."""

    def decide(self, tenant: str, context: ContextRecord | None, query: str) -> RouteDecision:
        return PASS_THROUGH


class EnrichedRouter:
    """Uses a learned context whenever there is one; no estimator, no test-time budget yet."""

    def decide(self, tenant: str, context: ContextRecord | None, query: str) -> RouteDecision:
        if context is not None and context.has_learned:
            return RouteDecision("enriched", reason="a learned context is available")
        return RouteDecision("full", reason="no learned context yet")


ROUTERS: dict[str, type[PassThroughRouter] | type[EnrichedRouter]] = {
    "passthrough": PassThroughRouter,
    "enriched": EnrichedRouter,
}


def rewrite(
    decision: RouteDecision, context: ContextRecord | None, messages: list[dict[str, Any]]
) -> list[dict[str, Any]] | None:
    """The messages to send instead of the client's, or None to send the client's as they are."""
    if decision.route == "cached":
        return None
    rewritten = messages
    if decision.route == "enriched":
        if context is None or not context.learned:
            raise ValueError("the enriched route needs a context with a learned context")
        rewritten = enrich(rewritten, context.learned)
    if decision.rung:
        rewritten = with_budget(rewritten, rung(decision.rung))
    return None if rewritten is messages else rewritten


def with_budget(messages: list[dict[str, Any]], budget: Rung) -> list[dict[str, Any]]:
    """The rung's instruction closes the query: small models follow the last instruction
    they read, and the upstream's max_tokens (set by the proxy) enforces the rest."""
    last_user = max(i for i, m in enumerate(messages) if m.get("role") == "user")
    query = messages[last_user]
    note = f"Answer budget: {budget.instruction}"
    content = query.get("content")
    if isinstance(content, list):
        content = [*content, {"type": "text", "text": note}]
    else:
        content = f"{content or ''}\n\n{note}"
    return [*messages[:last_user], {**query, "content": content}, *messages[last_user + 1 :]]


def enrich(messages: list[dict[str, Any]], notes: str) -> list[dict[str, Any]]:
    """The notes follow the context part and precede the query (answering's prompt order), so
    every query of one context still shares the context's prefix for the upstream's cache."""
    last_user = max(i for i, m in enumerate(messages) if m.get("role") == "user")
    note = {"role": "system", "content": f"{notes}\n\n{NOTES_HINT}"}
    return [*messages[:last_user], note, *messages[last_user:]]
