"""Requests and tokens per minute over a sliding minute, on a fake clock."""

from __future__ import annotations

from router.proxy.rates import Rates, Refusal


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_rpm_refuses_the_next_request_until_the_oldest_leaves_the_minute() -> None:
    clock = Clock()
    rates = Rates(clock)
    for second in (0, 10, 20):
        clock.now = 1000.0 + second
        assert rates.admit("k", rpm=3, tpm=0) is None
    clock.now = 1030.0
    assert rates.admit("k", rpm=3, tpm=0) == Refusal("requests", 3, 30)  # 1000 + 60 - 1030
    assert rates.admit("other", rpm=3, tpm=0) is None  # keys do not share a minute
    clock.now = 1060.0
    assert rates.admit("k", rpm=3, tpm=0) is None  # the request at 1000 has left


def test_refused_requests_do_not_count() -> None:
    clock = Clock()
    rates = Rates(clock)
    assert rates.admit("k", rpm=1, tpm=0) is None
    for _ in range(5):
        assert rates.admit("k", rpm=1, tpm=0) is not None
    clock.now += 60.0
    assert rates.admit("k", rpm=1, tpm=0) is None


def test_tpm_counts_finished_requests_tokens() -> None:
    clock = Clock()
    rates = Rates(clock)
    assert rates.admit("k", rpm=0, tpm=100) is None
    rates.spent_tokens("k", 60)
    clock.now += 5
    assert rates.admit("k", rpm=0, tpm=100) is None  # 60 < 100: admitted
    rates.spent_tokens("k", 50)
    clock.now += 5
    refusal = rates.admit("k", rpm=0, tpm=100)
    # 110 used; below 100 again once the first 60 leave, 50 s from now
    assert refusal == Refusal("tokens", 100, 50)
    clock.now += 50
    assert rates.admit("k", rpm=0, tpm=100) is None


def test_unlimited_keys_are_not_tracked() -> None:
    rates = Rates(Clock())
    for _ in range(1000):
        assert rates.admit("k", rpm=0, tpm=0) is None
    rates.spent_tokens("k", 10**6)
    assert rates._requests == {} and rates._tokens == {}


def test_retry_after_is_at_least_one_second() -> None:
    clock = Clock()
    rates = Rates(clock)
    rates.admit("k", rpm=1, tpm=0)
    clock.now += 59.9
    refusal = rates.admit("k", rpm=1, tpm=0)
    assert refusal is not None and refusal.retry_after_s == 1
