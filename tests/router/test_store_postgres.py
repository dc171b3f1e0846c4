"""The PostgreSQL store against a real server the session starts (`pg` in tests/conftest.py):
the store contract, the report queries, and what two replicas on one database need."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import openai
import psycopg
import pytest
from fake_upstream import FakeUpstream, completion
from test_store import LEARNED, StoreContract
from test_store_reports import (  # the same report tests, on this module's `store` fixture
    test_a_window_holds_what_reached_the_store_between_its_marks,
    test_adjacent_windows_add_up_to_their_span,
    test_aggregates_are_exact,
    test_an_empty_store_has_nothing_to_report,
    test_labeled_requests_with_their_labels_per_tenant,
    test_request_counts_per_context_version,
    test_sleep_jobs_count_in_the_window_they_ended,
)

from router.local_server import free_port
from router.proxy.app import create_app
from router.proxy.config import ProxyConfig
from router.proxy.server import ServerThread
from router.settings import Settings
from router.store import Store, StoreError, open_store
from router.store.base import SleepJob
from router.store.postgres import PostgresStore
from router.store.postgres_schema import MIGRATIONS, SCHEMA_VERSION

REPORT_TESTS = (
    test_adjacent_windows_add_up_to_their_span,
    test_aggregates_are_exact,
    test_an_empty_store_has_nothing_to_report,
    test_a_window_holds_what_reached_the_store_between_its_marks,
    test_labeled_requests_with_their_labels_per_tenant,
    test_request_counts_per_context_version,
    test_sleep_jobs_count_in_the_window_they_ended,
)


@pytest.fixture
def database(pg) -> Callable[[], str]:  # type: ignore[no-untyped-def]
    """A fresh, empty database per call: its URL (tests never share state)."""
    return pg.create_database  # type: ignore[no-any-return]


@pytest.fixture
def store(database: Callable[[], str]) -> Iterator[PostgresStore]:
    opened = PostgresStore(database())
    yield opened
    opened.close()


class TestPostgresStore(StoreContract):
    @pytest.fixture(autouse=True)
    def _store(self, database: Callable[[], str]) -> Iterator[None]:
        self.url = database()
        self.store = PostgresStore(self.url)
        self.opened: list[Store] = [self.store]
        yield
        for store in self.opened:
            store.close()

    def reopen(self) -> Store:
        self.opened.append(PostgresStore(self.url))
        return self.opened[-1]

    def outlive_claims(self) -> None:
        with psycopg.connect(self.url, autocommit=True) as db:
            db.execute("UPDATE sleep_jobs SET lease_until = 0 WHERE status = 'running'")

    def test_newer_schema_is_refused_naming_both_versions(self) -> None:
        with psycopg.connect(self.url, autocommit=True) as db:
            db.execute("UPDATE meta SET value = %s", (str(SCHEMA_VERSION + 1),))
        with pytest.raises(StoreError, match=f"version {SCHEMA_VERSION + 1}.*{SCHEMA_VERSION}"):
            PostgresStore(self.url)

    def test_both_url_schemes_open_it(self) -> None:
        for url in (self.url, self.url.replace("postgresql://", "postgres://")):
            opened = open_store(url)
            assert isinstance(opened, PostgresStore)
            assert opened.integrity_problems() == []
            opened.close()


def test_two_replicas_claim_every_job_exactly_once(database: Callable[[], str]) -> None:
    url = database()
    replicas = [PostgresStore(url, pool_size=4), PostgresStore(url, pool_size=4)]
    for i in range(200):
        replicas[0].register_context("t1", f"c{i}", f"text {i}")
        replicas[0].queue_sleep("t1", f"c{i}", 1)
    claimed: list[list[SleepJob]] = [[] for _ in range(8)]
    start = threading.Barrier(8)

    def work(worker: int) -> None:
        replica = replicas[worker % 2]
        start.wait()
        while (job := replica.claim_job()) is not None:
            claimed[worker].append(job)
            replica.finish_job(job, LEARNED)

    threads = [threading.Thread(target=work, args=(w,)) for w in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    ids = [job.job_id for jobs in claimed for job in jobs]
    assert len(ids) == 200 and len(set(ids)) == 200  # 0 lost, 0 duplicates
    per_replica = [sum(len(claimed[w]) for w in range(r, 8, 2)) for r in (0, 1)]
    assert all(n > 0 for n in per_replica), per_replica
    assert replicas[1].job_counts() == {"done": 200}
    assert replicas[1].get_context("t1", "c199").has_learned  # type: ignore[union-attr]
    for replica in replicas:
        replica.close()


def test_a_dead_claimers_job_is_claimed_again_once_its_lease_ran_out(
    database: Callable[[], str],
) -> None:
    url = database()
    dying, other = PostgresStore(url, lease_s=0.5), PostgresStore(url, lease_s=60.0)
    dying.register_context("t1", "doc", "text")
    dying.queue_sleep("t1", "doc", 1)
    first = dying.claim_job()
    assert first is not None
    assert other.claim_job() is None  # leased: not the other replica's yet
    assert other.requeue_running() == 0  # nor is a live claim put back
    time.sleep(0.7)
    again = other.claim_job()
    assert again is not None and (again.job_id, again.attempts) == (first.job_id, 2)
    dying.finish_job(first, LEARNED)  # the late first claimer: fenced off, changes nothing
    assert other.get_context("t1", "doc").sleep_status == "running"  # type: ignore[union-attr]
    other.finish_job(again, LEARNED)
    assert other.job_counts() == {"done": 1}
    assert other.get_context("t1", "doc").has_learned  # type: ignore[union-attr]
    dying.close()
    other.close()


def test_requeue_puts_back_only_expired_claims(database: Callable[[], str]) -> None:
    url = database()
    store = PostgresStore(url, lease_s=0.3)
    for name in ("a", "b"):
        store.register_context("t1", name, name)
        store.queue_sleep("t1", name, 1)
    expired = store.claim_job()
    store.lease_s = 60.0
    live = store.claim_job()
    time.sleep(0.5)
    assert expired is not None and live is not None and live.context_id == "b"
    assert store.requeue_running() == 1
    assert store.get_context("t1", "a").sleep_status == "queued"  # type: ignore[union-attr]
    assert store.get_context("t1", "b").sleep_status == "running"  # type: ignore[union-attr]
    assert store.job_counts() == {"queued": 1, "running": 1}
    store.close()


def test_replicas_starting_together_migrate_once(database: Callable[[], str]) -> None:
    url = database()
    start = threading.Barrier(4)
    opened: list[PostgresStore] = []
    errors: list[Exception] = []

    def open_one() -> None:
        start.wait()
        try:
            opened.append(PostgresStore(url))
        except Exception as exc:
            errors.append(exc)

    threads = [threading.Thread(target=open_one) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == [] and len(opened) == 4
    with psycopg.connect(url) as db:
        assert db.execute("SELECT key, value FROM meta").fetchall() == [
            ("schema_version", str(SCHEMA_VERSION))
        ]
    for store in opened:
        assert store.integrity_problems() == []
        store.close()


def test_a_version_1_database_seeds_its_spend_once_and_gains_answer_format(
    database: Callable[[], str],
) -> None:
    url = database()
    with psycopg.connect(url, autocommit=True) as db:  # as sleeptime left it at version 1
        db.execute(MIGRATIONS[0])
        db.execute("CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)")
        db.execute("INSERT INTO meta VALUES ('schema_version', '1')")
        db.execute(
            "INSERT INTO requests (tenant, request_id, time, route, status, prompt_tokens,"
            " completion_tokens, cached_tokens, latency_ms, cost, cost_usd)"
            " VALUES ('t1', 'r1', 1, 'full', 200, 0, 0, 0, 1, 0, 0.5)"
        )
        db.execute("INSERT INTO sleep_spend VALUES ('t1', 1, 0.25), ('t2', 1, 1)")
        db.execute(
            "INSERT INTO contexts (tenant, context_id, version, text, source, seen, updated)"
            " VALUES ('t1', 'doc', 1, 'a', 'explicit', 0, 1)"
        )
    store = PostgresStore(url)
    assert store.spend_by_tenant() == {"t1": 0.75, "t2": 1.0}
    store.add_sleep_spend("t2", 1.0)
    store.close()
    store = PostgresStore(url)  # seeded once: opening again does not count the rows again
    assert store.spend_by_tenant() == {"t1": 0.75, "t2": 2.0}
    assert store.get_context("t1", "doc").answer_format is None  # type: ignore[union-attr]
    assert store.register_context("t1", "doc", "a", answer_format="x").answer_format == "x"
    assert store.integrity_problems() == []
    store.close()


def test_a_wrong_password_is_a_store_error_without_the_password(pg, database) -> None:  # type: ignore[no-untyped-def]
    name = database().rsplit("/", 1)[1]
    with pytest.raises(StoreError) as refused:
        open_store(pg.url(name, password="not-the-Secret-42"))
    message = str(refused.value)
    assert "password authentication failed" in message and f"127.0.0.1:{pg.port}" in message
    assert "not-the-Secret-42" not in message and pg.password not in message


def test_a_missing_database_is_a_store_error_without_the_password(pg) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(StoreError, match="does not exist") as refused:
        open_store(pg.url("no_such_db"))
    assert pg.password not in str(refused.value)


def test_the_proxy_records_its_requests_in_postgres(
    database: Callable[[], str], fake: FakeUpstream, tmp_path: Path
) -> None:
    url = database()
    settings = Settings(cache_dir=tmp_path, upstream_url=fake.url, upstream_model="m")
    config = ProxyConfig.from_settings(settings, store_url=url, sleep_enabled=False)
    fake.enqueue(completion("4"))
    with ServerThread(create_app(config), free_port()) as proxy:
        client = openai.OpenAI(base_url=proxy.url, api_key="sk-any-tenant", max_retries=0)
        answer = client.chat.completions.create(
            model="sleeptime", messages=[{"role": "user", "content": "2+2?"}]
        )
        assert answer.choices[0].message.content == "4"
    store = PostgresStore(url)  # the proxy stopped: its writer drained into the database
    assert sum(store.request_counts().values()) == 1
    store.close()


def test_sqlite_users_never_import_psycopg(tmp_path: Path) -> None:
    script = (
        "import sys; from router.store import open_store;"
        f" open_store('sqlite:///{tmp_path}/s.sqlite').close();"
        " import router.proxy.app; print(sorted(m for m in sys.modules if 'psycopg' in m))"
    )
    root = Path(__file__).resolve().parents[2]
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=root)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"
