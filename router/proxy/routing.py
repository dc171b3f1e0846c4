"""Routing: what one query gets, decided per request; a trained policy plugs in here.

A `Router` sees the tenant, that tenant's record of the request's context (or
None) and the query, and returns a `RouteDecision`:

    full      forward the client's request; a rung adds its instruction only, the
              client's max_tokens stand (none stays none)
    enriched  add the learned context c' to the request; a rung adds its instruction
              and caps max_tokens at its budget, a cheap attempt escalated to full
              when cut there (`router.proxy.capped`)
    cached    answer with an anticipated answer without calling the upstream

The request's format turns a decision into the body to send
(`FormatAdapter.rewrite`). The pipeline calls both inside a guard: whatever
they raise, the request goes through as "full" (a user's request never fails
because of sleeptime), and the fallback is counted in the metrics.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Protocol

from policies import Route
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


def escalated(decision: RouteDecision, why: str) -> RouteDecision:
    """The request in full once its cheap attempt failed (a check that disagreed, an answer
    cut at the rung's budget): at the instruction of the policy's fallback rung, with the
    client's own budget, as every full route is."""
    return RouteDecision(
        "full",
        rung=decision.fallback_rung,
        scores=decision.scores,
        reason=f"{decision.reason}; {why}",
    )


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
