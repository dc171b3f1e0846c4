"""One routed request on its way through the pipeline, and what its record will say.

Whatever the format, a request ends the same way: one record (route, context, rung,
tokens of every upstream call it made, cost, latency, status), the metrics, and the
`X-Sleeptime-*` headers that explain its routing decision.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from typing import Any

from fastapi.responses import Response

from router.proxy.api_errors import ApiError
from router.proxy.contexts import ContextRef
from router.proxy.fallback import Caller, model_header
from router.proxy.formats.adapter import FormatAdapter, Outgoing, Parsed, Rewrite
from router.proxy.routing import PASS_THROUGH, RouteDecision
from router.proxy.spend import dollars
from router.proxy.state import ProxyState
from router.store.base import ContextRecord, RequestRecord


@dataclass
class Exchange:
    state: ProxyState
    format: FormatAdapter[Any]
    tenant: str
    request_id: str
    started: float = field(default_factory=time.perf_counter)
    ref: ContextRef | None = None
    context: ContextRecord | None = None
    decision: RouteDecision = PASS_THROUGH
    model: str | None = None
    model_override: str | None = None  # what "sleeptime" named upstream; None: the client's
    upstream: Caller | None = None  # the resolved model's upstream (or its fallback chain)
    deadline: float | None = None  # time.monotonic() by which every upstream call must answer
    receive: Any = None  # the ASGI channel that tells when the client leaves (client_wait)
    completion_tokens: int | None = None  # once known, for the tokens-saved header
    check: str | None = None  # a checked answer's outcome: "agreed", "disagreed" or "cut"
    spent_before: Any = None  # usage of the cheap calls whose answers were discarded
    routing: str = "off"  # "policy": the request opted into routing (router.proxy.opt_in)
    unroutable: str | None = None  # why routing left it as sent (router.proxy.routable)
    capped: bool = False  # the body's budget is the rung's, below the client's own
    escalated: bool = False  # a cheap answer cut at that budget was discarded

    def outgoing(self, request: Parsed, rewrite: Rewrite) -> Outgoing:
        """The body to send upstream, once the model is resolved."""
        stream_usage = self.state.config.stream_usage
        return self.format.outgoing(
            request, rewrite, model=self.model_override, stream_usage=stream_usage
        )

    def headers(self) -> dict[str, str]:
        headers = {"X-Request-Id": self.request_id, "X-Sleeptime-Route": self.decision.route}
        headers["X-Sleeptime-Routing"] = self.routing
        if self.unroutable:
            headers["X-Sleeptime-Reason"] = self.unroutable
        if self.escalated:
            headers["X-Sleeptime-Escalated"] = "length"
        if self.ref is not None:
            headers["X-Sleeptime-Context"] = self.ref.context_id
            version = self.context.version if self.context is not None else 1
            headers["X-Sleeptime-Context-Version"] = str(version)
        if self.decision.rung:
            headers["X-Sleeptime-Rung"] = self.decision.rung
        model_header(headers, self.model)
        if self.check:
            headers["X-Sleeptime-Check"] = self.check
        costs, route = self.state.costs, self.decision.route
        saved = costs.tokens_saved(self.tenant, route, self.completion_tokens)
        if saved is not None:
            headers["X-Sleeptime-Tokens-Saved"] = str(saved)
        if self.decision.scores:
            scores = json.dumps(dict(self.decision.scores), separators=(",", ":"))
            headers["X-Sleeptime-Scores"] = scores
        return headers

    def finish(self, status: int, error_code: str | None = None, *, usage: Any = None) -> int:
        """Records the request; returns its completion tokens. `usage` covers every upstream
        call of the request; a failed one reports none, so what a check spent is kept."""
        tokens = self.format.tokens(usage if usage is not None else self.spent_before)
        seconds = time.perf_counter() - self.started
        state, route = self.state, self.decision.route
        if status == 200:
            state.costs.saw_completion(self.tenant, route, tokens[1])
        state.metrics.observe(route, status, seconds)
        state.metrics.count_tokens(*tokens)
        record = self._record(status, error_code, tokens, seconds)
        state.charge(self.tenant, tokens[0] + tokens[1], record.cost_usd)
        state.records.record(record)
        return tokens[1]

    def _record(
        self, status: int, error_code: str | None, tokens: tuple[int, int, int], seconds: float
    ) -> RequestRecord:
        prompt, completion, cached = tokens
        called = self.model is not None and self.decision.route != "cached"  # else: free
        price = self.state.models.price_of(self.model) if called and self.model else None
        return RequestRecord(
            tenant=self.tenant,
            request_id=self.request_id,
            time=time.time(),
            route=self.decision.route,
            status=status,
            context_id=self.ref.context_id if self.ref else None,
            context_version=self.context.version if self.context else None,
            rung=self.decision.rung,
            model=self.model,
            prompt_tokens=prompt,
            completion_tokens=completion,
            cached_tokens=cached,
            latency_ms=seconds * 1000.0,
            cost=self.state.costs.paper_cost(self.decision.route, completion),
            error_code=error_code,
            cost_usd=dollars(price, prompt, completion, cached),
        )

    def fail(self, error: ApiError) -> Response:
        self.finish(error.status, error_code=error.code)
        return error.response({"X-Request-Id": self.request_id})
