"""What PostgreSQL replicas tell each other (`router.store.postgres_replicas`), against a
real server (`pg` in tests/conftest.py): a worker renews its job's lease while it works,
and a context changed through one replica drops from every other's cache as it commits.

Caches here keep records 60 s, so a test passes only through the notification."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import openai
import psycopg
import pytest
from fake_upstream import FakeUpstream, completion
from pg_server import PgServer
from test_sleep_pass_stop import StreamingSleeper
from test_store import LEARNED

from router.local_server import free_port
from router.proxy.app import create_app
from router.proxy.config import ProxyConfig
from router.proxy.context_cache import ContextCache
from router.proxy.routing import EnrichedRouter
from router.proxy.server import ServerThread
from router.settings import Settings
from router.store.postgres import PostgresStore
from router.worker import SleepWorker, fixed_budget

LONG_S = 60.0
DOC = "Janet's ducks lay 16 eggs per day. She eats 3 for breakfast and bakes with 4."


class Fallbacks:
    def inc(self) -> None:
        raise AssertionError("no lookup should fail")


class Told:
    """A ContextListener in front of a cache, keeping what it was told, in order."""

    def __init__(self, cache: ContextCache) -> None:
        self.cache = cache
        self.events: list[object] = []

    def forget(self, tenant: str, context_id: str) -> None:
        self.events.append((tenant, context_id))
        self.cache.forget(tenant, context_id)

    def forget_all(self) -> None:
        self.events.append("all")
        self.cache.forget_all()

    def watching(self, live: bool) -> None:
        self.events.append(live)
        self.cache.watching(live)


@pytest.fixture
def url(pg: PgServer) -> str:
    return pg.create_database()


@pytest.fixture
def replicas(url: str) -> Iterator[tuple[PostgresStore, PostgresStore]]:
    pair = (PostgresStore(url), PostgresStore(url))
    yield pair
    for store in pair:
        store.close()


def until(condition: Callable[[], object], timeout_s: float = 5.0) -> float:
    """Seconds until `condition` held; fails past `timeout_s`."""
    start = time.monotonic()
    while not condition():
        assert time.monotonic() - start < timeout_s, "the condition never held"
        time.sleep(0.005)
    return time.monotonic() - start


def cache_of(store: PostgresStore) -> ContextCache:
    return ContextCache(store, LONG_S, Fallbacks(), watched_ttl_s=LONG_S)


def test_a_change_through_one_replica_drops_from_the_others_cache_at_once(
    replicas: tuple[PostgresStore, PostgresStore],
) -> None:
    one, other = replicas
    cache = cache_of(other)
    told = Told(cache)  # as `cache.watch()` does, and says when a change was told
    stop = other.watch(told)
    try:
        until(lambda: cache.live)
        one.register_context("t1", "doc", "old text")
        until(lambda: ("t1", "doc") in told.events)
        assert cache.lookup("t1", "doc") is not None
        one.sight_context("t1", "doc", "old text", "implicit")  # no notification: still cached
        time.sleep(0.2)
        assert cache.lookup("t1", "doc").seen == 0  # type: ignore[union-attr]
        one.register_context("t1", "doc", "new text")
        assert until(lambda: cache.lookup("t1", "doc").version == 2) < 1.0  # type: ignore[union-attr]
        one.queue_sleep("t1", "doc", 2)
        job = one.claim_job()
        assert job is not None
        one.finish_job(job, LEARNED)
        assert until(lambda: cache.lookup("t1", "doc").has_learned) < 1.0  # type: ignore[union-attr]
    finally:
        stop()
    assert not cache.live


def test_a_lost_listening_connection_reconnects_and_forgets_everything(
    replicas: tuple[PostgresStore, PostgresStore], url: str
) -> None:
    one, other = replicas
    cache = cache_of(other)
    told = Told(cache)
    stop = other.watch(told)
    try:
        until(lambda: told.events == [True])
        one.register_context("t1", "doc", "text")
        until(lambda: ("t1", "doc") in told.events)
        assert cache.lookup("t1", "doc") is not None
        with psycopg.connect(url, autocommit=True) as admin:
            admin.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                " WHERE query LIKE 'LISTEN %%' AND pid <> pg_backend_pid()"
            )
            # A change nobody is told of, as one made while the connection was down.
            admin.execute("UPDATE contexts SET text = 'changed unseen', version = 7")
        until(lambda: told.events[-2:] == [False, True])
        assert cache.lookup("t1", "doc").version == 7  # type: ignore[union-attr]
        one.register_context("t1", "doc", "after the reconnect")
        until(lambda: cache.lookup("t1", "doc").version == 8)  # type: ignore[union-attr]
    finally:
        stop()


def test_a_renewed_lease_outlasts_its_length_and_a_dropped_one_does_not(url: str) -> None:
    worker, other = PostgresStore(url, lease_s=0.4), PostgresStore(url, lease_s=60.0)
    worker.register_context("t1", "doc", "text")
    worker.queue_sleep("t1", "doc", 1)
    job = worker.claim_job()
    assert job is not None
    for _ in range(6):  # 1.2 s, three leases
        time.sleep(0.2)
        assert worker.renew_lease(job)
        assert other.claim_job() is None
    time.sleep(0.6)  # its claimer went silent
    again = other.claim_job()
    assert again is not None and again.attempts == 2
    assert not worker.renew_lease(job)
    worker.close()
    other.close()


def slow_sleeper(delta_s: float) -> StreamingSleeper:
    backend = StreamingSleeper()
    backend.on_delta = lambda call, index: time.sleep(delta_s)
    return backend


def test_a_working_replica_keeps_its_job_past_the_lease(url: str) -> None:
    store, other = PostgresStore(url, lease_s=1.0), PostgresStore(url)
    store.register_context("t1", "doc", DOC)
    store.queue_sleep("t1", "doc", 1)
    backend = slow_sleeper(0.5)  # a pass of 2.5 s, past two leases
    worker = SleepWorker(store, backend, "m", renew_every_s=0.2, budget=fixed_budget(passes=1))
    stolen: list[object] = []
    stop = threading.Event()

    def try_to_claim() -> None:
        while not stop.is_set():
            stolen.append(other.claim_job())
            time.sleep(0.05)

    job = store.claim_job()
    assert job is not None
    thief = threading.Thread(target=try_to_claim)
    thief.start()
    try:
        assert asyncio.run(worker.process(job)) == "done"
    finally:
        stop.set()
        thief.join()
    assert len(stolen) > 10 and not any(stolen)
    assert other.job_counts() == {"done": 1} and backend.finished == 1
    store.close()
    other.close()


def test_a_stalled_replica_whose_job_was_taken_stops_its_pass(url: str) -> None:
    store, other = PostgresStore(url, lease_s=0.3), PostgresStore(url)
    store.register_context("t1", "doc", DOC)
    store.queue_sleep("t1", "doc", 1)
    backend = slow_sleeper(0.4)  # a pass of 2 s
    # Renewing less often than the lease lasts: the replica stalls past its lease.
    worker = SleepWorker(store, backend, "m", renew_every_s=0.8, budget=fixed_budget(passes=1))

    job = store.claim_job()
    assert job is not None
    taken: list[object] = []
    threading.Timer(0.45, lambda: taken.append(other.claim_job())).start()
    assert asyncio.run(worker.process(job)) == "lost"
    assert (backend.closed, backend.finished) == (1, 0)  # stopped mid-stream
    assert taken and taken[0] is not None
    assert other.job_counts() == {"running": 1}  # left to the new claimer, untouched
    other.finish_job(taken[0], LEARNED)  # type: ignore[arg-type]
    assert other.get_context("t1", "doc").learned == LEARNED.text  # type: ignore[union-attr]
    store.close()
    other.close()


def test_two_proxies_on_one_database_see_each_others_learned_context_at_once(
    url: str, fake: FakeUpstream, tmp_path: Path
) -> None:
    """Proxy b keeps what it read 60 s; the context a learned is served enriched by b as
    soon as a's job is done."""

    def proxy(name: str, sleep: bool) -> ServerThread:
        settings = Settings(
            cache_dir=tmp_path / name,
            upstream_url=fake.url,
            upstream_model="m",
            salt_path=tmp_path / "salt",  # one salt: a key is the same tenant on both
        )
        config = ProxyConfig.from_settings(
            settings, store_url=url, sleep_enabled=sleep, context_cache_s=LONG_S
        )
        app = create_app(config, router=EnrichedRouter(), sleep_backend=StreamingSleeper())
        return ServerThread(app, free_port())

    messages = [{"role": "system", "content": DOC}, {"role": "user", "content": "How many?"}]
    headers = {"X-Sleeptime-Context": "doc"}
    with proxy("a", True) as a, proxy("b", False) as b:
        client = {
            p: openai.OpenAI(base_url=p.url, api_key="sk-same-key", max_retries=0) for p in (a, b)
        }

        def route_through(p: ServerThread) -> str:
            fake.enqueue(completion("9"))
            raw = client[p].chat.completions.with_raw_response.create(
                model="sleeptime", messages=messages, extra_headers=headers
            )
            return raw.headers["x-sleeptime-route"]

        assert route_through(b) == "full"  # b reads "doc" (unknown yet) and keeps it
        registered = client[a].post("/contexts", cast_to=object, body={"id": "doc", "context": DOC})
        assert registered["id"] == "doc"  # type: ignore[index]
        until(lambda: client[a].get("/contexts/doc", cast_to=object)["status"] == "done", 10)  # type: ignore[index]
        assert until(lambda: route_through(b) == "enriched", 2.0) < 1.0
