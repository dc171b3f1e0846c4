"""One replica's view of what every replica admitted: pure, with a clock to inject.

Each replica counts what it admits here as it admits it (a dict update), and the syncing
thread (`router.proxy.usage_sync`) every `usage_sync_s` takes the counts not yet pushed
(`take`), adds them to the store in one transaction and brings back the cluster's totals
(`settle`). What a limit is checked against is then

    cluster totals last pulled + counts pushed but not yet answered + counts since

so a check stays a dict lookup and never waits on the database. Another replica's
admissions reach this one's totals at its next push and this one's next pull: a key gets
at most its limit plus what the other replicas admitted within about one sync interval.

Dollars are not pushed: requests' and sleep-time charges reach the store with their
records (`tenant_spend`, kept as they are written); a pull brings the tenant's total back,
and charges made here since the push began are added to it until the next one.

Only tenants active here within the last minute are synced; one idle longer is forgotten.
A tenant new here sets `arrived`, which wakes the syncing thread at once: until its totals
are back (one transaction), it is checked against this replica's own counts.
A store that cannot be reached leaves the last totals in place for at most a minute;
the replica then limits by its own counts, as with `usage_sync_s = 0`.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from router.store.base import USAGE_WINDOW_S, UsageDelta, UsageTotals


@dataclass
class _Tenant:
    touched: float
    pending_requests: int = 0
    pending_tokens: int = 0
    sent_requests: int = 0  # pushed, the totals that include them not back yet
    sent_tokens: int = 0
    usd_sent: float = 0.0  # charged before the push in flight began
    usd_recent: float = 0.0  # charged since
    cluster: UsageTotals | None = None
    pulled: float = 0.0


class SharedUsage:
    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self.clock = clock
        self._tenants: dict[str, _Tenant] = {}
        self._lock = threading.Lock()
        self.arrived = threading.Event()  # a tenant new here: its totals are wanted now

    # The event loop: counting and checking.

    def watch(self, tenant: str) -> None:
        """The tenant asked: its totals are pulled from the next sync on."""
        with self._lock:
            self._tenant(tenant)

    def count(self, tenant: str, requests: int = 0, tokens: int = 0, usd: float = 0.0) -> None:
        with self._lock:
            entry = self._tenant(tenant)
            entry.pending_requests += requests
            entry.pending_tokens += tokens
            entry.usd_recent += usd

    def requests(self, tenant: str) -> int:
        entry = self._tenants.get(tenant)
        if entry is None:
            return 0
        cluster = self._fresh(entry)
        return (cluster.requests if cluster else 0) + entry.sent_requests + entry.pending_requests

    def tokens(self, tenant: str) -> int:
        entry = self._tenants.get(tenant)
        if entry is None:
            return 0
        cluster = self._fresh(entry)
        return (cluster.tokens if cluster else 0) + entry.sent_tokens + entry.pending_tokens

    def usd(self, tenant: str) -> float | None:
        """None until a sync brought this tenant's total back."""
        entry = self._tenants.get(tenant)
        if entry is None or entry.cluster is None:
            return None
        return entry.cluster.usd + entry.usd_sent + entry.usd_recent

    def retry_after(self, tenant: str) -> float:
        """Seconds until the oldest second the cluster counted leaves the minute."""
        entry = self._tenants.get(tenant)
        cluster = self._fresh(entry) if entry is not None else None
        if cluster is None or cluster.oldest is None:
            return 0.0
        return max(0.0, cluster.oldest + USAGE_WINDOW_S + 1 - self.clock())

    # The syncing thread.

    def take(self) -> list[UsageDelta]:
        """What to push: every active tenant, its counts since the last push (maybe none,
        which reads its totals). Forgets the tenants idle for a minute."""
        now = self.clock()
        with self._lock:
            idle = [t for t, e in self._tenants.items() if now - e.touched > USAGE_WINDOW_S]
            for tenant in idle:
                del self._tenants[tenant]
            deltas = []
            for tenant, entry in self._tenants.items():
                entry.sent_requests += entry.pending_requests
                entry.sent_tokens += entry.pending_tokens
                entry.usd_sent += entry.usd_recent
                deltas.append(UsageDelta(tenant, entry.pending_requests, entry.pending_tokens))
                entry.pending_requests = entry.pending_tokens = 0
                entry.usd_recent = 0.0
            return deltas

    def settle(self, totals: Mapping[str, UsageTotals]) -> None:
        """The cluster's totals, which include what `take` gave."""
        now = self.clock()
        with self._lock:
            for entry in self._tenants.values():
                entry.sent_requests = entry.sent_tokens = 0
                entry.usd_sent = 0.0
            for tenant, total in totals.items():
                entry = self._tenants.get(tenant)
                if entry is not None:
                    entry.cluster, entry.pulled = total, now

    def failed(self) -> None:
        """The push did not commit. Its counts are dropped, not pushed again: this replica's
        own sliding minute (`Rates`) still holds them, and counts kept through a long outage
        would outlive their minute. Dollars reach the store with their records anyway."""
        with self._lock:
            for entry in self._tenants.values():
                entry.usd_recent += entry.usd_sent
                entry.sent_requests = entry.sent_tokens = 0
                entry.usd_sent = 0.0

    def _tenant(self, tenant: str) -> _Tenant:
        now = self.clock()
        entry = self._tenants.get(tenant)
        if entry is None:
            entry = self._tenants[tenant] = _Tenant(touched=now)
            self.arrived.set()
        entry.touched = now
        return entry

    def _fresh(self, entry: _Tenant) -> UsageTotals | None:
        """Totals older than the window say nothing about it any more."""
        if entry.cluster is None or self.clock() - entry.pulled > USAGE_WINDOW_S:
            return None
        return entry.cluster
