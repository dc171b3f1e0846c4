"""The tenant's record of a request's context, kept a moment in memory.

A store read per request would cost more than the rest of the proxy once the store is
across a network, so records are kept for `context_cache_s` (1 s by default). Changes
made in this process (a new version, a finished sleep job) drop the cached record at
once through `forget`. A store that tells of changes (`router.store.changes`: PostgreSQL
replicas) drops records another replica changed as soon as it commits, so while it
watches, records are kept `WATCHED_TTL_S`: what that leaves stale is a context's
sighting count (no notification per request), which the policy router reads as a floor
on the queries a context serves. A context not known yet is kept `context_cache_s` only.
While the watch is down (reconnecting), the short TTL is back and nothing is missed.
On SQLite nothing changes: one process, the short TTL.

A store that fails costs the request its sleep-time help, no more: the lookup answers
None and counts a router fallback.

Thread safety: `forget`, `forget_all` and `watching` come from the watch's thread. A
lookup that read the store while a change was told does not keep what it read (it may
predate the change): every forget moves `_epoch`, and a read is kept only if the epoch it
started at is still current.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Protocol

from router.store.base import ContextRecord, Store
from router.store.changes import WatchesContexts

log = logging.getLogger("sleeptime.proxy")
MAX_CACHED = 10_000  # records kept in memory; the lot is dropped when it is full
WATCHED_TTL_S = 30.0  # while the store tells of every change


class Counter(Protocol):
    def inc(self) -> None: ...


class ContextCache:
    def __init__(
        self,
        store: Store,
        ttl_s: float,
        fallbacks: Counter,
        *,
        watched_ttl_s: float = WATCHED_TTL_S,
    ) -> None:
        self.store = store
        self.ttl_s = ttl_s
        self.watched_ttl_s = watched_ttl_s
        self.live = False  # the store is telling of every change now
        self._fallbacks = fallbacks
        self._recent: dict[tuple[str, str], tuple[float, ContextRecord | None]] = {}
        self._lock = threading.Lock()
        self._epoch = 0

    def watch(self) -> Callable[[], None]:
        """Starts listening where the store can tell; returns what stops it."""
        if not isinstance(self.store, WatchesContexts):
            return lambda: None
        stop_watch = self.store.watch(self)

        def stop() -> None:
            stop_watch()
            self.watching(False)

        return stop

    def lookup(self, tenant: str, context_id: str) -> ContextRecord | None:
        key, now = (tenant, context_id), time.monotonic()
        cached = self._recent.get(key)
        if cached is not None and cached[0] > now:
            return cached[1]
        epoch = self._epoch
        try:
            known = self.store.get_context(tenant, context_id)
        except Exception:
            self._fallbacks.inc()
            log.exception("context lookup failed; the request goes through as pass-through")
            return None
        ttl = self.watched_ttl_s if self.live and known is not None else self.ttl_s
        with self._lock:
            if epoch == self._epoch:  # no change was told while the store was read
                if len(self._recent) >= MAX_CACHED:
                    self._recent.clear()
                self._recent[key] = (now + ttl, known)
        return known

    def forget(self, tenant: str, context_id: str) -> None:
        with self._lock:
            self._epoch += 1
            self._recent.pop((tenant, context_id), None)

    def forget_all(self) -> None:
        with self._lock:
            self._epoch += 1
            self._recent.clear()

    def watching(self, live: bool) -> None:
        """Either way what is held may have missed a change: it goes."""
        with self._lock:
            self.live = live
            self._epoch += 1
            self._recent.clear()
