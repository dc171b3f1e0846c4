"""Requests and tokens per minute per key, over a sliding minute: pure, with a clock to inject.

A request is counted when it is admitted; its tokens when it finishes (its usage is known
only then), and they count against the key's next admissions. A key at its limit is told
how long until enough of its minute expires (`Retry-After`). Only keys with a limit are
tracked, so memory grows with the number of limited keys, not with traffic.

With replicas (`shared`, see `router.proxy.shared_usage`) a key's use is the larger of this
replica's own minute and what every replica admitted as last synced plus since: the own
minute alone is what a replica limits by when the store cannot be reached.
"""

from __future__ import annotations

import math
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

from router.proxy.shared_usage import SharedUsage

WINDOW_S = 60.0


class SlidingMinute:
    """Amounts added in the last `WINDOW_S` seconds."""

    def __init__(self) -> None:
        self._events: deque[tuple[float, int]] = deque()
        self.total = 0

    def add(self, now: float, amount: int) -> None:
        self._events.append((now, amount))
        self.total += amount

    def used(self, now: float) -> int:
        events = self._events
        while events and events[0][0] <= now - WINDOW_S:
            self.total -= events.popleft()[1]
        return self.total

    def wait(self, now: float, limit: int) -> float:
        """Seconds until the total is below `limit` again."""
        excess = self.used(now) - limit + 1
        for at, amount in self._events:
            excess -= amount
            if excess <= 0:
                return max(0.0, at + WINDOW_S - now)
        return 0.0


@dataclass(frozen=True)
class Refusal:
    what: str  # "requests" or "tokens"
    limit: int
    retry_after_s: int


class Rates:
    def __init__(
        self, clock: Callable[[], float] = time.monotonic, shared: SharedUsage | None = None
    ) -> None:
        self.clock = clock
        self.shared = shared
        self._requests: dict[str, SlidingMinute] = {}
        self._tokens: dict[str, SlidingMinute] = {}

    def admit(self, tenant: str, rpm: int, tpm: int) -> Refusal | None:
        """None, and the request counted; or why not and for how long."""
        now = self.clock()
        shared = self.shared
        if shared is not None and (rpm > 0 or tpm > 0):
            shared.watch(tenant)
        requests = self._window(self._requests, tenant) if rpm > 0 else None
        if requests is not None:
            across = shared.requests(tenant) if shared is not None else 0
            refused = self._refusal("requests", tenant, requests, across, now, rpm)
            if refused is not None:
                return refused
        tokens = self._window(self._tokens, tenant) if tpm > 0 else None
        if tokens is not None:
            across = shared.tokens(tenant) if shared is not None else 0
            refused = self._refusal("tokens", tenant, tokens, across, now, tpm)
            if refused is not None:
                return refused
        if requests is not None:
            requests.add(now, 1)
            if shared is not None:
                shared.count(tenant, requests=1)
        return None

    def spent_tokens(self, tenant: str, tokens: int) -> None:
        window = self._tokens.get(tenant)
        if window is not None and tokens > 0:
            window.add(self.clock(), tokens)
            if self.shared is not None:
                self.shared.count(tenant, tokens=tokens)

    def _refusal(
        self, what: str, tenant: str, window: SlidingMinute, across: int, now: float, limit: int
    ) -> Refusal | None:
        """`across`: what every replica used, as this one knows it (0 without replicas)."""
        used = window.used(now)
        if max(used, across) < limit:
            return None
        wait = window.wait(now, limit) if used >= limit else 0.0
        if across >= limit and self.shared is not None:
            wait = max(wait, self.shared.retry_after(tenant))
        return Refusal(what, limit, _seconds(wait))

    @staticmethod
    def _window(windows: dict[str, SlidingMinute], tenant: str) -> SlidingMinute:
        window = windows.get(tenant)
        if window is None:
            window = windows[tenant] = SlidingMinute()
        return window


def _seconds(wait: float) -> int:
    return max(1, math.ceil(wait))
