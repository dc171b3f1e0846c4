"""Prometheus metrics, one registry per app so that apps (and tests) never share counters."""

from __future__ import annotations

from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120)


class Metrics:
    content_type = CONTENT_TYPE_LATEST

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.requests = Counter(
            "sleeptime_requests",
            "Chat requests by route and HTTP status",
            ["route", "status"],
            registry=r,
        )
        self.latency = Histogram(
            "sleeptime_request_latency_seconds",
            "Chat request latency as the client saw it",
            ["route"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.tokens = Counter("sleeptime_tokens", "Test-time tokens by kind", ["kind"], registry=r)
        self.fallbacks = Counter(
            "sleeptime_router_fallbacks",
            "Requests sent as pass-through after a router error",
            registry=r,
        )
        self.checks = Counter(
            "sleeptime_checks",
            "Checked answers on the learned context: agreed (served) or disagreed (full)",
            ["outcome"],
            registry=r,
        )
        self.passed_through = Counter(
            "sleeptime_passed_through",
            "Requests routing applied to, sent as the client sent them, by reason",
            ["reason"],
            registry=r,
        )
        self.escalations = Counter(
            "sleeptime_escalations",
            "Cheap answers cut at the rung's budget, discarded and asked again in full",
            registry=r,
        )
        self.sleep_jobs = Counter(
            "sleeptime_sleep_jobs", "Finished sleep-time jobs by outcome", ["outcome"], registry=r
        )
        self.sleep_tokens = Counter("sleeptime_sleep_tokens", "Sleep-time tokens", registry=r)
        self.spend = Counter(
            "sleeptime_spend_usd",
            "Dollars spent upstream, by client key name and kind (request or sleep)",
            ["key", "kind"],
            registry=r,
        )
        self.refused = Counter(
            "sleeptime_refused",
            "Requests the gate answered itself (no key, a revoked one, over its rate or budget)",
            ["status", "code"],
            registry=r,
        )
        self.inflight = Gauge("sleeptime_inflight", "Chat requests in flight", registry=r)
        self._observed: dict[tuple[str, int], tuple[Any, Any]] = {}  # routes x statuses: few
        self._tokens = tuple(
            self.tokens.labels(kind) for kind in ("prompt", "completion", "cached")
        )
        self.records_dropped = Gauge(
            "sleeptime_records_dropped",
            "Records dropped because the writer queue was full",
            registry=r,
        )

    def observe(self, route: str, status: int, seconds: float) -> None:
        """`labels()` costs microseconds a call (it validates, locks, builds a key): each
        (route, status) looks its children up once, then keeps them."""
        children = self._observed.get((route, status))
        if children is None:
            children = (self.requests.labels(route, str(status)), self.latency.labels(route))
            self._observed[route, status] = children
        children[0].inc()
        children[1].observe(seconds)

    def count_tokens(self, prompt: int, completion: int, cached: int) -> None:
        for child, count in zip(self._tokens, (prompt, completion, cached), strict=True):
            child.inc(count)

    def count_spend(self, key: str, kind: str, usd: float) -> None:
        self.spend.labels(key, kind).inc(usd)

    def render(self) -> bytes:
        return generate_latest(self.registry)
