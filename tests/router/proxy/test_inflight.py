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
        self.preempted = 0

    def wake(self) -> None:
        self.woken += 1

    def preempt(self) -> None:
        self.preempted += 1


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


def test_a_request_that_makes_the_proxy_busy_preempts_sleep_time_work() -> None:
    waker = Waker()
    inflight = InFlight(Gauge(), max_for_sleep=1)
    inflight.worker = waker
    inflight.begin()  # sleep may share the upstream with one request
    assert waker.preempted == 0
    inflight.begin()
    assert waker.preempted == 1
    inflight.end()
    inflight.end()
    assert (waker.preempted, waker.woken) == (1, 2)  # each end that left it idle woke it
