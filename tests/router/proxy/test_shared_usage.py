"""Limits across replicas, with a fake clock: two replicas' `Rates`/`Spend` on one real
SQLite store, synced by hand (`UsageSync.sync`), as their threads do every interval."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from fake_upstream import FakeUpstream
from test_proxy_budgets import running

from router.proxy.rates import Rates
from router.proxy.shared_usage import SharedUsage
from router.proxy.spend import Spend
from router.proxy.usage_sync import UsageSync
from router.store import RequestRecord, SqliteStore
from router.store.base import UsageDelta, UsageTotals


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


class Replica:
    def __init__(self, store: SqliteStore, clock: Clock) -> None:
        self.usage = SharedUsage(clock)
        self.rates = Rates(clock, shared=self.usage)
        self.spend = Spend(store.spend_by_tenant(), self.usage)
        self.sync = UsageSync(store, self.usage, 1.0, clock=clock)

    def admitted(self, n: int, rpm: int = 10, tpm: int = 0) -> int:
        return sum(self.rates.admit("t1", rpm, tpm) is None for _ in range(n))


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def store(tmp_path: Path) -> SqliteStore:
    return SqliteStore(tmp_path / "store.sqlite")


@pytest.fixture
def pair(store: SqliteStore, clock: Clock) -> tuple[Replica, Replica]:
    return Replica(store, clock), Replica(store, clock)


def test_each_replica_alone_admits_its_limit_until_they_sync(pair: tuple[Replica, Replica]) -> None:
    a, b = pair
    assert a.admitted(8) == 8
    assert b.admitted(8) == 8  # not synced yet: the overshoot the docs bound
    a.sync.sync(), b.sync.sync(), a.sync.sync()
    assert a.usage.requests("t1") == b.usage.requests("t1") == 16
    assert a.admitted(1) == b.admitted(1) == 0


def test_after_a_sync_the_replicas_share_the_limit(pair: tuple[Replica, Replica]) -> None:
    a, b = pair
    assert a.admitted(4) == 4
    a.sync.sync(), b.sync.sync()  # b had no count yet: it only watches after its first ask
    assert b.admitted(1) == 1
    b.sync.sync()  # b pulls a's 4 with its own 1
    assert b.admitted(10) == 5
    # a last pulled 4: it admits 6 more. The 6 over the limit are what b admitted since a's
    # last pull, the documented bound.
    assert a.admitted(10) == 6
    a.sync.sync(), b.sync.sync()
    assert a.admitted(1) == b.admitted(1) == 0


def test_a_refusal_by_the_cluster_says_when_the_oldest_second_leaves(
    pair: tuple[Replica, Replica], clock: Clock
) -> None:
    a, b = pair
    assert a.admitted(10) == 10
    a.sync.sync()
    b.admitted(0)
    clock.now += 20
    b.rates.admit("t1", 10, 0)  # watched now
    b.sync.sync()
    refusal = b.rates.admit("t1", 10, 0)
    assert refusal is not None and refusal.what == "requests"
    assert 38 <= refusal.retry_after_s <= 41  # second 1_000_000 leaves the minute at +60
    clock.now += 41
    b.sync.sync()
    assert b.admitted(5) == 5  # a's ten are out of the window


def test_tokens_are_shared_like_requests(pair: tuple[Replica, Replica]) -> None:
    a, b = pair
    assert a.admitted(1, rpm=0, tpm=100) == 1
    a.rates.spent_tokens("t1", 150)
    b.admitted(1, rpm=0, tpm=100)
    a.sync.sync(), b.sync.sync()
    refusal = b.rates.admit("t1", 0, 100)
    assert refusal is not None and refusal.what == "tokens"


def test_a_budget_spent_through_one_replica_is_refused_by_the_other(
    pair: tuple[Replica, Replica], store: SqliteStore
) -> None:
    a, b = pair
    assert not b.spend.over("t1", 1.0)
    a.spend.add("t1", 1.5)  # a's request finished; its record reaches the store
    store.add_records([RequestRecord("t1", "r1", 1.0, "full", 200, cost_usd=1.5)])
    assert a.spend.over("t1", 1.0)
    assert not b.spend.over("t1", 1.0)  # until b syncs
    b.sync.sync()
    assert b.spend.over("t1", 1.0)
    assert b.spend.of("t1") == 1.5


def test_charges_during_a_push_count_until_the_pull_brings_them(clock: Clock) -> None:
    usage = SharedUsage(clock)
    usage.count("t1", requests=2, usd=0.5)
    assert usage.take() == [UsageDelta("t1", 2, 0)]
    usage.count("t1", requests=1, usd=0.25)
    assert usage.requests("t1") == 3  # pushed 2 + since 1, before any total came back
    assert usage.usd("t1") is None  # no total yet: Spend uses its own
    usage.settle({"t1": UsageTotals(requests=7, usd=4.0, oldest=clock.now)})
    assert usage.requests("t1") == 8
    assert usage.usd("t1") == 4.25


def test_a_failed_push_drops_its_counts_and_stale_totals_expire(clock: Clock) -> None:
    usage = SharedUsage(clock)
    usage.count("t1", requests=3)
    usage.take()
    usage.settle({"t1": UsageTotals(requests=9, oldest=clock.now)})
    usage.count("t1", requests=1)
    usage.take()
    usage.failed()
    assert usage.requests("t1") == 9  # the last totals; the own minute (Rates) has the one
    clock.now += 61
    usage.watch("t1")
    assert usage.requests("t1") == 0  # totals a minute old say nothing about this minute


def test_tenants_idle_for_a_minute_are_forgotten(clock: Clock) -> None:
    usage = SharedUsage(clock)
    usage.count("t1", requests=1)
    usage.count("t2", requests=1)
    clock.now += 30
    usage.watch("t2")
    clock.now += 31
    assert [delta.tenant for delta in usage.take()] == ["t2"]
    assert usage.requests("t1") == 0


def test_a_failing_store_is_survived_and_counted(clock: Clock) -> None:
    class Down:
        def add_usage(self, deltas: object, now: float) -> None:
            raise OSError("connection refused")

        def prune_usage(self, before: float) -> int:
            raise OSError("connection refused")

    usage = SharedUsage(clock)
    sync = UsageSync(Down(), usage, 1.0, clock=clock)  # type: ignore[arg-type]
    usage.count("t1", requests=1)
    assert not sync.sync()
    assert sync.failures == 1
    assert usage.requests("t1") == 0


def test_a_tenant_new_here_wakes_the_thread_before_its_interval(store: SqliteStore) -> None:
    other = SharedUsage()
    other.count("t1", requests=7)
    UsageSync(store, other, 1.0).sync()
    usage = SharedUsage()
    sync = UsageSync(store, usage, 30.0).start()
    try:
        usage.watch("t1")
        deadline = time.monotonic() + 5
        while usage.requests("t1") != 7:
            assert time.monotonic() < deadline, "the new tenant waited for the interval"
            time.sleep(0.01)
    finally:
        started = time.monotonic()
        sync.close()
    assert time.monotonic() - started < 1
    assert sync.syncs == 1


def test_one_proxy_on_sqlite_never_syncs(tmp_path: Path, fake: FakeUpstream) -> None:
    """The embedded default limits exactly as before: no shared counts, no thread."""
    with running(tmp_path, fake, usage_sync_s=0.25) as (_, state):
        assert state.usage_sync is None
        assert state.gate.rates.shared is None and state.spend.shared is None
