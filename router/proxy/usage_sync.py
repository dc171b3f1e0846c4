"""Per-key limits across replicas: a thread that pushes this replica's counts to the store
and pulls the cluster's totals back, every `usage_sync_s`.

The request path never waits on it: the gate checks `SharedUsage` (a dict lookup), which
this thread refreshes in one transaction per interval (`KeyStore.add_usage`), off the event
loop, as the record writer does. A store that fails is logged and retried at the next
interval; the replica limits by its own counts meanwhile. A tenant new to this replica
wakes the thread before its interval is up (`SharedUsage.arrived`), at most every
`MIN_GAP_S`, so its first requests here are checked against the cluster's totals within
a transaction rather than an interval. Buckets older than two minutes are pruned once a
minute, by whichever replica gets there: pruning twice is harmless.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from router.proxy.shared_usage import SharedUsage
from router.store.base import USAGE_WINDOW_S, KeyStore

log = logging.getLogger("sleeptime.usage")
MIN_GAP_S = 0.02  # between two syncs, however many new tenants arrive


class UsageSync:
    def __init__(
        self,
        store: KeyStore,
        usage: SharedUsage,
        interval_s: float,
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.store = store
        self.usage = usage
        self.interval_s = interval_s
        self.clock = clock
        self.syncs = 0
        self.failures = 0
        self._pruned = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="sleeptime-usage", daemon=True)

    def start(self) -> UsageSync:
        self._thread.start()
        return self

    def sync(self) -> bool:
        """One push and pull; False when the store failed."""
        deltas = self.usage.take()
        now = self.clock()
        try:
            if deltas:
                self.usage.settle(self.store.add_usage(deltas, now))
            if now - self._pruned >= USAGE_WINDOW_S:
                self.store.prune_usage(now - 2 * USAGE_WINDOW_S)
                self._pruned = now
        except Exception:  # the next interval tries again; the thread must not die
            self.usage.failed()
            self.failures += 1
            log.exception("usage sync: the store did not take this replica's counts")
            return False
        self.syncs += 1
        return True

    def close(self, timeout_s: float = 5.0) -> None:
        self._stop.set()
        self.usage.arrived.set()
        if self._thread.is_alive():
            self._thread.join(timeout_s)

    def _run(self) -> None:
        while True:
            self.usage.arrived.wait(self.interval_s)
            if self._stop.is_set():
                return
            self.usage.arrived.clear()
            self.sync()
            self._stop.wait(min(MIN_GAP_S, self.interval_s))
