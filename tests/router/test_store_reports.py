"""`StoreReader` on SQLite: exact aggregates between marks, labeled requests, counts."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from router.store.base import Aggregates, LearnedRecord, Mark, RequestRecord
from router.store.sqlite import SqliteStore

EARLY = Mark(0, 0, 0.0)
LEARNED = LearnedRecord("Notes: 9 eggs", [{"question": "How many?", "answer": "9"}], 40)


def record(request_id: str, tenant: str = "t-a", **fields: object) -> RequestRecord:
    values: dict = {"time": 1.0, "route": "full", "status": 200, **fields}
    return RequestRecord(tenant=tenant, request_id=request_id, **values)


TRAFFIC = [
    record("r1", prompt_tokens=10, completion_tokens=5, latency_ms=100.0, cost=50.0),
    record(
        "r2",
        route="enriched",
        prompt_tokens=20,
        completion_tokens=3,
        cached_tokens=8,
        latency_ms=300.0,
        cost=30.0,
        context_id="c1",
        context_version=1,
    ),
    record("r3", tenant="t-b", status=500, latency_ms=5.0, error_code="upstream_error"),
    record("r4", tenant="t-b", route="cached", latency_ms=1.0),
    record("r5", status=499, prompt_tokens=7, latency_ms=9000.0),
]


@pytest.fixture
def store(tmp_path: Path) -> SqliteStore:
    return SqliteStore(tmp_path / "s.sqlite")


def later() -> Mark:
    return Mark(0, 0, time.time() + 1.0)


def test_an_empty_store_has_nothing_to_report(store: SqliteStore) -> None:
    end = store.mark(at=5.0)
    assert end == Mark(0, 0, 5.0)
    assert store.aggregates(EARLY, end) == Aggregates(cost=0.0)


def test_aggregates_are_exact(store: SqliteStore) -> None:
    store.add_records(TRAFFIC)
    assert store.add_feedback("t-a", "r1", True) and store.add_feedback("t-a", "r2", False)
    _sleep_jobs(store)
    got = store.aggregates(EARLY, store.mark(at=time.time() + 1.0))
    assert (got.requests, got.tenants) == (5, 2)
    assert got.by_route == {"cached": 1, "enriched": 1, "full": 3}
    assert got.by_status == {"2xx": 3, "4xx": 1, "5xx": 1}
    assert (got.errors, got.error_rate) == (2, 0.4)
    assert (got.prompt_tokens, got.completion_tokens, got.cached_tokens) == (37, 8, 8)
    assert got.cost == 80.0
    # answered latencies 1, 100, 300 (the 500 and the 499 are out): nearest-rank p50, p95
    assert (got.latency_p50_ms, got.latency_p95_ms) == (100.0, 300.0)
    assert got.feedback_by_route == {"enriched": (1, 0), "full": (1, 1)}
    assert (got.feedback, got.feedback_correct, got.accuracy) == (2, 1, 0.5)
    assert (got.sleep_done, got.sleep_failed, got.sleep_tokens) == (1, 1, 40)


def test_a_window_holds_what_reached_the_store_between_its_marks(store: SqliteStore) -> None:
    store.add_records(TRAFFIC[:2])
    first = store.mark()
    store.add_records([*TRAFFIC[2:], record("r1", prompt_tokens=1)])  # r1 again: replaced
    store.add_feedback("t-b", "r4", True)
    second = store.mark()
    window = store.aggregates(first, second)
    assert (window.requests, window.prompt_tokens) == (4, 8)
    assert window.feedback_by_route == {"cached": (1, 1)}
    total = store.aggregates(EARLY, second)
    assert (total.requests, total.prompt_tokens) == (5, 28)  # the old r1 is gone
    assert store.aggregates(second, store.mark()).requests == 0


def test_sleep_jobs_count_in_the_window_they_ended(store: SqliteStore) -> None:
    _sleep_jobs(store)
    ended = time.time()
    assert store.aggregates(EARLY, Mark(0, 0, ended)).sleep_done == 1
    after = store.aggregates(Mark(0, 0, ended), later())
    assert (after.sleep_done, after.sleep_failed) == (0, 0)


def test_labeled_requests_with_their_labels_per_tenant(store: SqliteStore) -> None:
    store.add_records(TRAFFIC)
    store.add_feedback("t-a", "r2", False)
    store.add_feedback("t-b", "r4", True)
    assert store.labeled_requests() == [(TRAFFIC[1], False), (TRAFFIC[3], True)]
    assert store.labeled_requests("t-b") == [(TRAFFIC[3], True)]
    assert store.labeled_requests("t-nobody") == []


def test_request_counts_per_context_version(store: SqliteStore) -> None:
    store.add_records([*TRAFFIC, record("r6", context_id="c1", context_version=1)])
    counts = store.request_counts()
    assert counts[("t-a", "c1", 1)] == 2 and counts[("t-a", None, None)] == 2
    assert sum(counts.values()) == 6
    assert store.request_counts("t-b") == {("t-b", None, None): 2}


def _sleep_jobs(store: SqliteStore) -> None:
    """One job done (40 tokens), one failed."""
    for context_id in ("c1", "c2"):
        store.register_context("t-a", context_id, f"text of {context_id}")
        store.queue_sleep("t-a", context_id, 1)
    first, second = store.claim_job(), store.claim_job()
    assert first is not None and second is not None
    store.finish_job(first, LEARNED)
    store.fail_job(second, "upstream down")


def test_adjacent_windows_add_up_to_their_span(store: SqliteStore) -> None:
    """The proxy's MLflow total is a running sum of windows: it must equal the span's own
    aggregates in everything that adds up."""
    store.add_records(TRAFFIC[:2])
    store.add_feedback("t-a", "r1", True)
    first = store.mark()
    store.add_records(TRAFFIC[2:])
    store.add_feedback("t-a", "r2", False)
    store.add_feedback("t-b", "r4", True)
    _sleep_jobs(store)
    second = store.mark(at=time.time() + 1.0)
    summed = store.aggregates(EARLY, first).plus(store.aggregates(first, second))
    whole = store.aggregates(EARLY, second)
    assert summed.by_route == whole.by_route and summed.by_status == whole.by_status
    assert summed.feedback_by_route == whole.feedback_by_route
    for name in ("requests", "prompt_tokens", "completion_tokens", "cached_tokens", "cost"):
        assert getattr(summed, name) == getattr(whole, name), name
    assert (summed.sleep_done, summed.sleep_failed, summed.sleep_tokens) == (1, 1, 40)
    assert (summed.tenants, summed.latency_p50_ms) == (0, None)  # not additive: left out
