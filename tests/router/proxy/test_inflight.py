"""In-flight requests as the sleep-time worker sees them."""

from __future__ import annotations

from router.proxy.inflight import InFlight


class Gauge:
    def __init__(self) -> None:
        self.value = 0

    def inc(self) -> None:
        self.value += 1

    def dec(self) -> None:
        self.value -= 1


class Waker:
    def __init__(self) -> None:
        self.woken = 0

    def wake(self) -> None:
        self.woken += 1


def test_the_last_request_to_leave_wakes_the_worker() -> None:
    gauge, waker = Gauge(), Waker()
    inflight = InFlight(gauge, max_for_sleep=0)
    inflight.worker = waker
    inflight.begin()
    inflight.begin()
    assert (inflight.count, gauge.value, inflight.is_idle()) == (2, 2, False)
    inflight.end()
    assert waker.woken == 0 and not inflight.is_idle()
    inflight.end()
    assert (inflight.count, gauge.value, waker.woken) == (0, 0, 1) and inflight.is_idle()


def test_sleep_may_share_the_upstream_with_a_few_requests() -> None:
    inflight = InFlight(Gauge(), max_for_sleep=1)
    inflight.begin()
    assert inflight.is_idle()
    inflight.begin()
    assert not inflight.is_idle()
    inflight.end()  # no worker yet: nothing to wake, nothing fails
    assert inflight.is_idle()
