"""Test-time traffic as the sleep-time worker sees it: how many user requests are in flight.

Sleep-time work runs only while the proxy is idle (`max_inflight_for_sleep`), so the
worker asks `is_idle` between passes, the last request to leave wakes it, and a request
that makes the proxy busy preempts the pass in flight (it stops at its next delta and
runs again later). The count lives in the event loop's thread: no lock, one integer per
request.
"""

from __future__ import annotations

from typing import Protocol


class Gauge(Protocol):
    def inc(self) -> None: ...

    def dec(self) -> None: ...


class Waker(Protocol):
    def wake(self) -> None: ...

    def preempt(self) -> None: ...


class InFlight:
    def __init__(self, gauge: Gauge, max_for_sleep: int) -> None:
        self.count = 0
        self.max_for_sleep = max_for_sleep
        self.worker: Waker | None = None  # set once the sleep-time worker runs
        self._gauge = gauge

    def begin(self) -> None:
        self.count += 1
        self._gauge.inc()
        if self.worker is not None and self.count > self.max_for_sleep:
            self.worker.preempt()  # users first, even over a pass already running

    def end(self) -> None:
        self.count -= 1
        self._gauge.dec()
        if self.worker is not None and self.is_idle():
            self.worker.wake()

    def is_idle(self) -> bool:
        return self.count <= self.max_for_sleep
