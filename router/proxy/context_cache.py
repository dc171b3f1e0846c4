"""The tenant's record of a request's context, kept a moment in memory.

A store read per request would cost more than the rest of the proxy once the store is
across a network, so records are kept for `context_cache_s` (1 s by default). Changes
made in this process (a new version, a finished sleep job) drop the cached record at
once through `forget`; changes made elsewhere show within the TTL. A store that fails
costs the request its sleep-time help, no more: the lookup answers None and counts a
router fallback.
"""

from __future__ import annotations

import logging
import time
from typing import Protocol

from router.store.base import ContextRecord, Store

log = logging.getLogger("sleeptime.proxy")
MAX_CACHED = 10_000  # records kept in memory; the lot is dropped when it is full


class Counter(Protocol):
    def inc(self) -> None: ...


class ContextCache:
    def __init__(self, store: Store, ttl_s: float, fallbacks: Counter) -> None:
        self.store = store
        self.ttl_s = ttl_s
        self._fallbacks = fallbacks
        self._recent: dict[tuple[str, str], tuple[float, ContextRecord | None]] = {}

    def lookup(self, tenant: str, context_id: str) -> ContextRecord | None:
        key, now = (tenant, context_id), time.monotonic()
        cached = self._recent.get(key)
        if cached is not None and cached[0] > now:
            return cached[1]
        try:
            known = self.store.get_context(tenant, context_id)
        except Exception:
            self._fallbacks.inc()
            log.exception("context lookup failed; the request goes through as pass-through")
            return None
        if len(self._recent) >= MAX_CACHED:
            self._recent.clear()
        self._recent[key] = (now + self.ttl_s, known)
        return known

    def forget(self, tenant: str, context_id: str) -> None:
        self._recent.pop((tenant, context_id), None)
