"""Readiness: whether an upstream of the default model answers, asked at most every ~2 s.

`/health` is liveness (the process serves); `/health/ready` is whether requests can be
answered, which a load balancer or Kubernetes uses to send traffic elsewhere while the
upstream is down. Probes come from every replica's balancer every few seconds, so one
answer is kept `ttl_s` and concurrent probes wait on the same check: the upstream sees
at most one `GET /models` per `ttl_s`, however often the proxy is asked.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Sequence

from router.errors import UpstreamError
from router.settings import safe_url

Probe = Callable[[float], Awaitable[object]]  # GET /models by a `time.monotonic()` deadline
TTL_S = 2.0
TIMEOUT_S = 2.0
GRACE_S = 0.5  # past the deadline, for a probe that does not keep it


class Readiness:
    def __init__(
        self,
        targets: Sequence[tuple[str, Probe]],
        *,
        ttl_s: float = TTL_S,
        timeout_s: float = TIMEOUT_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        """`targets`: (base URL, a call that raises unless the upstream answers by the
        deadline it is given), in the order requests try them: ready when any answers."""
        self.targets = tuple(targets)
        self.ttl_s, self.timeout_s, self.clock = ttl_s, timeout_s, clock
        self._checked_at: float | None = None
        self._reason: str | None = None
        self._lock = asyncio.Lock()

    async def check(self) -> str | None:
        """None when ready, else why not (one line, no key)."""
        async with self._lock:
            now = self.clock()
            if self._checked_at is None or now - self._checked_at >= self.ttl_s:
                self._reason = await self._probe_all()
                self._checked_at = self.clock()
            return self._reason

    async def _probe_all(self) -> str | None:
        failures = []
        for url, probe in self.targets:
            failure = await self._probe(probe)
            if failure is None:
                return None
            failures.append(f"{safe_url(url)}: {failure}")
        return "no upstream answers (" + "; ".join(failures) + ")"

    async def _probe(self, probe: Probe) -> str | None:
        try:
            async with asyncio.timeout(self.timeout_s + GRACE_S):
                await probe(time.monotonic() + self.timeout_s)
        except TimeoutError:
            return f"no answer to GET /models within {self.timeout_s:g} s"
        except (UpstreamError, LookupError) as exc:
            return str(exc) or type(exc).__name__
        return None
