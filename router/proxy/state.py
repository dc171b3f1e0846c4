"""Everything one running proxy holds, built by the app's lifespan and shared by its routes."""

from __future__ import annotations

import itertools
import logging
import os
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from policies import Prices
from router.proxy.config import ProxyConfig
from router.proxy.contexts import ContextRef
from router.proxy.limits import KeyLimits
from router.proxy.prometheus import Metrics
from router.proxy.routing import PASS_THROUGH, RouteDecision, Router, rewrite
from router.proxy.tenants import Tenants
from router.store.base import ContextRecord, RequestRecord, Store
from router.store.journal import RecordJournal
from router.store.writer import BackgroundWriter
from router.upstream import Forwarder
from router.worker import SleepWorker

log = logging.getLogger("sleeptime.proxy")
MAX_CACHED = 10_000  # context records kept in memory; the lot is dropped when it is full


@dataclass(frozen=True)
class Sighting:
    """A request showed this context: counted, and queued for sleep once seen twice."""

    tenant: str
    ref: ContextRef


class ProxyState:
    def __init__(
        self,
        config: ProxyConfig,
        forwarder: Forwarder,
        store: Store,
        router: Router,
        tenants: Tenants,
        *,
        upstream_model: str = "",
        metrics: Metrics | None = None,
        journal: RecordJournal | None = None,
    ) -> None:
        self.config = config
        self.forwarder = forwarder
        self.store = store
        self.router = router
        self.tenants = tenants
        self.limits = KeyLimits(config.max_inflight_per_key)
        self.prices = Prices(test_ratio=config.settings.test_token_price_ratio)
        self.metrics = metrics or Metrics()
        self.worker: SleepWorker | None = None
        self.inflight = 0
        self.journal = journal  # opened: records outlive a crash; None: they wait in memory
        self.writer: BackgroundWriter[RequestRecord | Sighting] = BackgroundWriter(
            self._write, max_queue=config.record_queue
        )
        self._upstream_model = upstream_model
        self._id_prefix = os.urandom(8).hex()
        self._ids = itertools.count()
        self._recent: dict[tuple[str, str], tuple[float, ContextRecord | None]] = {}
        self._full_tokens: dict[str, float] = {}

    # Test-time traffic, as the sleep-time worker sees it.

    def begin(self) -> None:
        self.inflight += 1
        self.metrics.inflight.inc()

    def end(self) -> None:
        self.inflight -= 1
        self.metrics.inflight.dec()
        if self.worker is not None and self.is_idle():
            self.worker.wake()

    def is_idle(self) -> bool:
        return self.inflight <= self.config.max_inflight_for_sleep

    async def upstream_model(self) -> str:
        """What "sleeptime" or no model means: the configured model, else the upstream's first."""
        if not self._upstream_model:
            models = await self.forwarder.models()
            if not models:
                raise LookupError("the upstream lists no models: set upstream_model")
            self._upstream_model = models[0]
        return self._upstream_model

    # Contexts and routing.

    def lookup(self, tenant: str, ref: ContextRef | None) -> ContextRecord | None:
        """The context as it was before this request; the sighting goes to the writer.

        Records are kept for `context_cache_s`: a store read per request would cost more than
        the rest of the proxy once the store is across a network. Changes made here (a new
        version, a finished job) drop the cached record at once; others show within the TTL."""
        if ref is None:
            return None
        known = self._known(tenant, ref.context_id)
        self.writer.put(Sighting(tenant, ref))  # after the read: this request is not yet counted
        return known

    def _known(self, tenant: str, context_id: str) -> ContextRecord | None:
        key, now = (tenant, context_id), time.monotonic()
        cached = self._recent.get(key)
        if cached is not None and cached[0] > now:
            return cached[1]
        try:
            known = self.store.get_context(tenant, context_id)
        except Exception:  # a store that fails costs the request its sleep-time help, no more
            self.metrics.fallbacks.inc()
            log.exception("context lookup failed; the request goes through as pass-through")
            return None
        if len(self._recent) >= MAX_CACHED:
            self._recent.clear()
        self._recent[key] = (now + self.config.context_cache_s, known)
        return known

    def forget(self, tenant: str, context_id: str) -> None:
        self._recent.pop((tenant, context_id), None)

    def route(
        self,
        tenant: str,
        context: ContextRecord | None,
        query: str,
        messages: list[dict[str, Any]],
    ) -> tuple[RouteDecision, list[dict[str, Any]] | None]:
        """Never raises: a router that fails sends the request through unchanged."""
        try:
            decision = self.router.decide(tenant, context, query)
            return decision, rewrite(decision, context, messages)
        except Exception:
            self.metrics.fallbacks.inc()
            log.exception("router failed; the request goes through as pass-through")
            return PASS_THROUGH, None

    def new_request_id(self) -> str:
        """Unique across restarts (a random prefix per process) without a syscall per request."""
        return f"req-{self._id_prefix}{next(self._ids):08x}"

    def record(self, record: RequestRecord) -> None:
        """Journaled before it returns, so the record of a response a client got outlives a
        crash of the proxy; the writer moves it to the store with its next batch. Without a
        journal, or when it fails (a full disk), the record waits in the writer's queue."""
        if self.journal is not None and self.journal.append(record):
            self.writer.nudge()
        else:
            self.writer.put(record)

    def close(self) -> None:
        """Stops the writer, then moves what the journal still holds into the store; what a
        failing store refuses stays in the journal for the next start."""
        self.writer.close()
        if self.journal is not None:
            self.journal.close()
            self.journal.catch_up(self.store)

    def saw_completion(self, tenant: str, route: str, completion_tokens: int) -> None:
        """A running mean of what the full route costs this tenant: the yardstick for the
        tokens-saved header (per tenant, so no figure crosses tenants either)."""
        if route != "full" or completion_tokens <= 0:
            return
        known = self._full_tokens.get(tenant)
        mean = completion_tokens if known is None else known + 0.1 * (completion_tokens - known)
        if known is None and len(self._full_tokens) >= MAX_CACHED:
            self._full_tokens.clear()
        self._full_tokens[tenant] = mean

    def tokens_saved(self, tenant: str, route: str, completion_tokens: int | None) -> int | None:
        """Completion tokens this answer did not spend against the tenant's full-route mean;
        None on the full route, before any full answer, or while the count is unknown
        (a stream's headers leave before its tokens)."""
        full = self._full_tokens.get(tenant)
        if route == "full" or full is None or completion_tokens is None:
            return None
        return max(0, round(full - completion_tokens))

    def cost(self, completion_tokens: int) -> float:
        """The paper cost of one answer (policies.cost), in sleep-time token units."""
        return float(self.prices.paper_cost(completion_tokens))

    # The writer thread.

    def _write(self, items: Sequence[RequestRecord | Sighting]) -> None:
        """Journaled records first: they are what a crash must not lose."""
        if self.journal is not None:
            self.journal.drain(self.store)
        records = [item for item in items if isinstance(item, RequestRecord)]
        if records:
            self.store.add_records(records)
        sightings = Counter((i.tenant, i.ref.context_id) for i in items if isinstance(i, Sighting))
        refs = {(i.tenant, i.ref.context_id): i.ref for i in items if isinstance(i, Sighting)}
        for (tenant, context_id), times in sightings.items():
            self._sight(tenant, refs[tenant, context_id], times)

    def _sight(self, tenant: str, ref: ContextRef, times: int) -> None:
        context = self.store.sight_context(tenant, ref.context_id, ref.text, ref.source, times)
        if context.seen >= 2 and context.sleep_status is None and context.text.strip():
            self.queue_sleep(context)

    def queue_sleep(self, context: ContextRecord) -> bool:
        if not self.config.sleep_enabled:
            return False
        queued = self.store.queue_sleep(context.tenant, context.context_id, context.version)
        if queued and self.worker is not None:
            self.worker.wake()
        return queued
