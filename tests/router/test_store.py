"""The Store contract: one test class, reused by every implementation through its `store` fixture.

A store passes when a subclass of `StoreContract` supplies a fixture that opens it,
`reopen` that opens it again as a restarted process would, and where claims are leased,
`outlive_claims` (tests/router/test_store_postgres.py).
"""

from __future__ import annotations

import os
import sqlite3
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from router.store import (
    BackgroundWriter,
    LearnedRecord,
    RequestRecord,
    SqliteStore,
    Store,
    StoreError,
)
from router.store.base import ApiKey, KeyExists, UsageDelta, UsageTotals
from router.store.sqlite import SCHEMA_VERSION


def record(request_id: str, tenant: str = "t1", **fields: object) -> RequestRecord:
    values: dict = {"time": 1.0, "route": "full", "status": 200, **fields}
    return RequestRecord(tenant=tenant, request_id=request_id, **values)


V1_SCHEMA = """
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
INSERT INTO meta VALUES ('schema_version', '1');
CREATE TABLE contexts (
    tenant TEXT NOT NULL, context_id TEXT NOT NULL, version INTEGER NOT NULL, text TEXT NOT NULL,
    source TEXT NOT NULL, seen INTEGER NOT NULL, sleep_status TEXT, learned TEXT,
    anticipated TEXT, sleep_tokens INTEGER NOT NULL DEFAULT 0, error TEXT, updated REAL NOT NULL,
    PRIMARY KEY (tenant, context_id));
"""

LEARNED = LearnedRecord("Notes:\n- 9 eggs", [{"question": "How many?", "answer": "9"}], 40, 1)


class StoreContract:
    store: Store

    def reopen(self) -> Store:
        raise NotImplementedError

    def outlive_claims(self) -> None:
        """Time passes until a dead process's claims run out. Nothing to wait for on one
        process's store (its restart requeues); a shared store's leases expire."""

    def test_records_round_trip_per_tenant(self) -> None:
        self.store.add_records([record("r1", prompt_tokens=5, cost=1.5), record("r2")])
        got = self.store.get_record("t1", "r1")
        assert got == record("r1", prompt_tokens=5, cost=1.5)
        assert self.store.get_record("t2", "r1") is None

    def test_sighting_creates_then_counts(self) -> None:
        first = self.store.sight_context("t1", "c1", "text", "implicit")
        again = self.store.sight_context("t1", "c1", "text", "implicit", times=2)
        assert (first.version, first.seen, first.sleep_status) == (1, 1, None)
        assert again.seen == 3
        assert self.store.get_context("t2", "c1") is None

    def test_register_same_text_keeps_version(self) -> None:
        self.store.register_context("t1", "doc", "a")
        assert self.store.register_context("t1", "doc", "a").version == 1

    def test_expected_queries_is_kept_until_given_again(self) -> None:
        assert self.store.register_context("t1", "doc", "a").expected_queries is None
        assert self.store.register_context("t1", "doc", "a", 4.0).expected_queries == 4.0
        assert self.store.register_context("t1", "doc", "b").expected_queries == 4.0
        assert self.store.register_context("t1", "doc", "b", 2.5).expected_queries == 2.5
        self.store.register_context("t2", "doc", "a", 9.0)
        assert self.store.get_context("t1", "doc").expected_queries == 2.5  # type: ignore[union-attr]

    def test_new_text_is_a_new_version_and_drops_the_learned(self) -> None:
        self.store.register_context("t1", "doc", "old")
        self.store.queue_sleep("t1", "doc", 1)
        job = self.store.claim_job()
        assert job is not None
        self.store.finish_job(job, LEARNED)
        assert self.store.get_context("t1", "doc").has_learned  # type: ignore[union-attr]
        changed = self.store.register_context("t1", "doc", "new")
        assert (changed.version, changed.learned, changed.sleep_status) == (2, None, None)
        assert changed.text == "new"

    def test_finishing_an_old_version_does_not_touch_the_new_one(self) -> None:
        self.store.register_context("t1", "doc", "old")
        self.store.queue_sleep("t1", "doc", 1)
        job = self.store.claim_job()
        self.store.register_context("t1", "doc", "new")
        self.store.finish_job(job, LEARNED)  # type: ignore[arg-type]
        assert self.store.get_context("t1", "doc").learned is None  # type: ignore[union-attr]

    def test_a_version_is_queued_once(self) -> None:
        self.store.register_context("t1", "doc", "a")
        assert self.store.queue_sleep("t1", "doc", 1)
        assert not self.store.queue_sleep("t1", "doc", 1)
        job = self.store.claim_job()
        assert job is not None and job.status == "running" and job.attempts == 1
        assert self.store.claim_job() is None
        self.store.finish_job(job, LEARNED)
        assert not self.store.queue_sleep("t1", "doc", 1)
        assert self.store.claim_job() is None

    def test_finish_stores_learned_and_anticipated(self) -> None:
        self.store.register_context("t1", "doc", "a")
        self.store.queue_sleep("t1", "doc", 1)
        self.store.finish_job(self.store.claim_job(), LEARNED)  # type: ignore[arg-type]
        context = self.store.get_context("t1", "doc")
        assert context is not None and context.sleep_status == "done"
        assert (context.learned, context.anticipated) == (LEARNED.text, LEARNED.anticipated)
        assert (context.sleep_tokens, context.truncated_passes) == (40, 1)
        assert self.store.job_counts() == {"done": 1}

    def test_a_new_version_forgets_what_was_learned_of_the_old(self) -> None:
        self.store.register_context("t1", "doc", "a")
        self.store.queue_sleep("t1", "doc", 1)
        self.store.finish_job(self.store.claim_job(), LEARNED)  # type: ignore[arg-type]
        changed = self.store.register_context("t1", "doc", "b")
        assert changed.version == 2 and not changed.has_learned
        assert (changed.learned, changed.sleep_tokens, changed.truncated_passes) == (None, 0, 0)

    def test_fail_keeps_the_reason(self) -> None:
        self.store.register_context("t1", "doc", "a")
        self.store.queue_sleep("t1", "doc", 1)
        self.store.fail_job(self.store.claim_job(), "UpstreamTimeout: slow")  # type: ignore[arg-type]
        context = self.store.get_context("t1", "doc")
        assert context is not None
        assert (context.sleep_status, context.error) == ("failed", "UpstreamTimeout: slow")
        assert self.store.claim_job() is None

    def test_new_version_supersedes_queued_jobs(self) -> None:
        self.store.register_context("t1", "doc", "old")
        self.store.queue_sleep("t1", "doc", 1)
        self.store.register_context("t1", "doc", "new")
        assert self.store.claim_job() is None
        assert self.store.queue_sleep("t1", "doc", 2)
        job = self.store.claim_job()
        assert job is not None and job.version == 2

    def test_jobs_come_out_in_order(self) -> None:
        for name in ("a", "b", "c"):
            self.store.register_context("t1", name, name)
            self.store.queue_sleep("t1", name, 1)
        claimed = [self.store.claim_job() for _ in range(3)]
        assert [job.context_id for job in claimed if job] == ["a", "b", "c"]

    def test_running_job_resumes_after_a_crash(self) -> None:
        self.store.register_context("t1", "doc", "a")
        self.store.queue_sleep("t1", "doc", 1)
        assert self.store.claim_job() is not None
        # The process dies here: no finish, no fail, no close.
        self.outlive_claims()
        restarted = self.reopen()
        assert restarted.requeue_running() == 1
        job = restarted.claim_job()
        assert job is not None and (job.context_id, job.attempts) == ("doc", 2)
        assert restarted.get_context("t1", "doc").sleep_status == "running"  # type: ignore[union-attr]
        restarted.finish_job(job, LEARNED)
        assert restarted.requeue_running() == 0
        assert restarted.claim_job() is None
        restarted.close()

    def test_feedback_needs_the_tenants_request(self) -> None:
        self.store.add_records([record("r1")])
        assert self.store.add_feedback("t1", "r1", True)
        assert not self.store.add_feedback("t2", "r1", False)
        assert not self.store.add_feedback("t1", "nope", False)
        self.store.add_feedback("t1", "r1", False)  # a relabel replaces the label
        assert self.store.get_feedback("t1", "r1") is False
        assert self.store.get_feedback("t2", "r1") is None

    def test_keys_are_created_found_by_hash_listed_and_revoked_by_name(self) -> None:
        key = api_key("k1", "alice", rpm=5, budget_usd=2.5)
        assert self.store.create_key(key) == key
        assert self.store.key_by_hash("hash-k1") == key
        assert self.store.key_by_hash("hash-nope") is None
        with pytest.raises(KeyExists):
            self.store.create_key(api_key("k2", "alice"))
        revoked = self.store.revoke_key("alice")
        assert revoked is not None and revoked.revoked_at is not None and not revoked.live
        assert self.store.revoke_key("alice") is None  # no live key of that name any more
        assert self.store.key_by_hash("hash-k1") == revoked  # revoked, not unknown
        self.store.create_key(api_key("k3", "alice"))  # a revoked name can be given again
        assert [(k.key_id, k.live) for k in self.store.list_keys()] == [
            ("k1", False),
            ("k3", True),
        ]

    def test_limits_and_counts_past_32_bits_round_trip(self) -> None:
        """`sleeptime keys create --tpm` takes any integer; a record's tokens may be large."""
        key = api_key("k1", "big", rpm=10**9, tpm=10**12)
        assert self.store.create_key(key) == key
        self.store.add_records([record("r1", prompt_tokens=3 * 10**9)])
        assert self.store.get_record("t1", "r1").prompt_tokens == 3 * 10**9  # type: ignore[union-attr]

    def test_spend_sums_requests_and_sleep_per_tenant(self) -> None:
        self.store.add_records([record("r1", cost_usd=0.25), record("r2", cost_usd=0.5)])
        self.store.add_records([record("r1", tenant="t2")])
        self.store.add_sleep_spend("t1", 0.125)
        self.store.add_sleep_spend("t3", 1.0)
        assert self.store.spend_by_tenant() == {"t1": 0.875, "t3": 1.0}
        assert self.store.get_record("t1", "r2").cost_usd == 0.5  # type: ignore[union-attr]

    def test_spend_counts_a_request_written_again_once(self) -> None:
        """The journal may replay a record the store already has: its dollars count once."""
        self.store.add_records([record("r1", cost_usd=0.25), record("r2", cost_usd=0.5)])
        self.store.add_records([record("r1", cost_usd=0.25)])
        assert self.store.spend_by_tenant() == {"t1": 0.75}
        self.store.add_records([record("r2", cost_usd=1.0), record("r3", tenant="t2", cost_usd=2)])
        assert self.reopen().spend_by_tenant() == {"t1": 1.25, "t2": 2.0}

    def test_usage_adds_up_across_writers_within_the_window(self) -> None:
        """Each replica pushes its deltas; each gets the cluster's totals back."""
        other = self.reopen()
        self.store.add_records([record("r1", tenant="t2", cost_usd=0.5)])
        got = self.store.add_usage([UsageDelta("t1", 3, 100), UsageDelta("t2", 1)], 1000.5)
        assert got == {"t1": UsageTotals(3, 100, 0.0, 1000), "t2": UsageTotals(1, 0, 0.5, 1000)}
        got = other.add_usage([UsageDelta("t1", 2, 50), UsageDelta("t3")], 1030.2)
        assert got == {"t1": UsageTotals(5, 150, 0.0, 1000), "t3": UsageTotals()}
        # At 1060.9 the bucket of second 1000 has left the minute: only 1030's remain.
        later = self.store.add_usage([UsageDelta("t1"), UsageDelta("t2")], 1060.9)
        assert later == {"t1": UsageTotals(2, 50, 0.0, 1030), "t2": UsageTotals(0, 0, 0.5, None)}
        assert self.store.prune_usage(1030) == 2
        assert self.store.add_usage([UsageDelta("t1")], 1031) == {"t1": UsageTotals(2, 50, 0, 1030)}

    def test_answer_format_is_kept_until_given_again_and_is_no_new_version(self) -> None:
        first = self.store.register_context("t1", "doc", "a")
        assert first.answer_format is None
        given = self.store.register_context("t1", "doc", "a", answer_format="number")
        assert (given.version, given.answer_format) == (1, "number")
        assert self.store.register_context("t1", "doc", "b").answer_format == "number"
        self.store.register_context("t1", "doc", "b", answer_format="json")
        assert self.store.get_context("t1", "doc").answer_format == "json"  # type: ignore[union-attr]
        seen = self.store.sight_context("t1", "doc", "b", "implicit")
        assert (seen.version, seen.answer_format) == (2, "json")
        assert self.store.get_context("t2", "doc") is None

    def test_integrity(self) -> None:
        assert self.store.integrity_problems() == []

    def test_concurrent_writers_and_readers(self) -> None:
        def write(worker: int) -> None:
            for i in range(50):
                self.store.add_records([record(f"w{worker}-{i}")])
                self.store.sight_context("t1", "shared", "text", "implicit")

        threads = [threading.Thread(target=write, args=(w,)) for w in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert self.store.get_context("t1", "shared").seen == 200  # type: ignore[union-attr]
        assert self.store.get_record("t1", "w3-49") is not None

    def test_a_claim_renews_until_its_job_ends(self) -> None:
        self.store.register_context("t1", "doc", "a")
        self.store.queue_sleep("t1", "doc", 1)
        job = self.store.claim_job()
        assert job is not None
        assert self.store.renew_lease(job) and self.store.renew_lease(job)
        self.store.finish_job(job, LEARNED)
        assert not self.store.renew_lease(job)
        assert self.store.get_context("t1", "doc").has_learned  # type: ignore[union-attr]

    def test_a_claim_taken_back_renews_no_more(self) -> None:
        self.store.register_context("t1", "doc", "a")
        self.store.queue_sleep("t1", "doc", 1)
        first = self.store.claim_job()
        assert first is not None
        self.outlive_claims()  # its claimer stalled (or died) past the lease
        restarted = self.reopen()
        restarted.requeue_running()
        again = restarted.claim_job()
        assert again is not None and again.attempts == first.attempts + 1
        assert not self.store.renew_lease(first)  # fenced: the old claimer learns to stop
        assert restarted.renew_lease(again)
        restarted.close()


class TestSqliteStore(StoreContract):
    @pytest.fixture(autouse=True)
    def _store(self, tmp_path: Path) -> Iterator[None]:
        self.path = tmp_path / "store.sqlite"
        self.store = SqliteStore(self.path)
        yield
        self.store.close()

    def reopen(self) -> Store:
        return SqliteStore(self.path)

    def test_wal_mode(self) -> None:
        with sqlite3.connect(self.path) as db:
            assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"

    def test_newer_schema_is_refused(self) -> None:
        with sqlite3.connect(self.path) as db:
            db.execute("UPDATE meta SET value = ?", (str(SCHEMA_VERSION + 1),))
        with pytest.raises(StoreError, match="schema version"):
            SqliteStore(self.path)

    def test_a_version_1_store_is_migrated_and_keeps_its_contexts(self, tmp_path: Path) -> None:
        old = tmp_path / "v1.sqlite"
        with sqlite3.connect(old) as db:
            db.executescript(V1_SCHEMA)
            db.execute(
                "INSERT INTO contexts (tenant, context_id, version, text, source, seen, updated)"
                " VALUES ('t1', 'doc', 3, 'kept', 'explicit', 5, 1.0)"
            )
        store = SqliteStore(old)
        kept = store.get_context("t1", "doc")
        assert kept is not None and (kept.version, kept.text, kept.seen) == (3, "kept", 5)
        assert store.register_context("t1", "doc", "kept", 7.0).expected_queries == 7.0
        assert kept.truncated_passes == 0  # columns of later versions get their defaults
        store.queue_sleep("t1", "doc", 3)
        store.finish_job(store.claim_job(), LEARNED)  # type: ignore[arg-type]
        learned = store.get_context("t1", "doc")
        assert learned is not None and learned.truncated_passes == 1
        assert store.integrity_problems() == []  # includes: schema now at SCHEMA_VERSION
        store.close()

    def test_not_a_database_is_refused(self, tmp_path: Path) -> None:
        junk = tmp_path / "junk.sqlite"
        junk.write_bytes(b"this is not sqlite" * 100)
        with pytest.raises(StoreError):
            SqliteStore(junk)

    def test_store_files_are_private(self, tmp_path: Path) -> None:
        """The database, its -wal and -shm are 0600, whatever the umask."""
        old_mask = os.umask(0o022)
        try:
            store = SqliteStore(tmp_path / "fresh.sqlite")
            store.add_records([record("r1")])
            paths = [tmp_path / f"fresh.sqlite{end}" for end in ("", "-wal", "-shm")]
            assert {oct(path.stat().st_mode & 0o777) for path in paths} == {"0o600"}
            store.close()
        finally:
            os.umask(old_mask)

    def test_an_existing_readable_store_is_tightened(self, tmp_path: Path) -> None:
        self.store.close()
        for end in ("", "-wal", "-shm"):
            if Path(f"{self.path}{end}").exists():
                os.chmod(f"{self.path}{end}", 0o644)
        SqliteStore(self.path).close()
        assert self.path.stat().st_mode & 0o777 == 0o600

    def test_a_version_3_store_gains_cost_usd_and_keys(self, tmp_path: Path) -> None:
        old = tmp_path / "v3.sqlite"
        SqliteStore(old).close()
        with sqlite3.connect(old) as db:  # back to version 3: no cost_usd, no key tables
            db.execute("ALTER TABLE requests DROP COLUMN cost_usd")
            db.execute("DROP TABLE api_keys")
            db.execute("UPDATE meta SET value = '3'")
        store = SqliteStore(old)
        store.add_records([record("r1", cost_usd=0.5)])
        store.create_key(api_key("k1", "alice"))
        assert store.spend_by_tenant() == {"t1": 0.5}
        assert store.integrity_problems() == []
        store.close()

    def test_a_version_5_store_seeds_its_spend_once_and_gains_answer_format(
        self, tmp_path: Path
    ) -> None:
        old = tmp_path / "v5.sqlite"
        SqliteStore(old).close()
        with sqlite3.connect(old) as db:  # back to version 5: spend only in the rows
            db.execute("DROP TABLE tenant_spend")
            db.execute("ALTER TABLE contexts DROP COLUMN answer_format")
            db.execute("UPDATE meta SET value = '4'")
            db.execute(
                "INSERT INTO requests (tenant, request_id, time, route, status,"
                " prompt_tokens, completion_tokens, cached_tokens, latency_ms, cost,"
                " cost_usd) VALUES ('t1', 'r1', 1, 'full', 200, 0, 0, 0, 1, 0, 0.5)"
            )
            db.execute("INSERT INTO sleep_spend VALUES ('t1', 1, 0.25), ('t2', 1, 1)")
            db.execute(
                "INSERT INTO contexts (tenant, context_id, version, text, source, seen,"
                " updated) VALUES ('t1', 'doc', 1, 'a', 'explicit', 0, 1)"
            )
        store = SqliteStore(old)
        assert store.spend_by_tenant() == {"t1": 0.75, "t2": 1.0}
        store.add_sleep_spend("t2", 1.0)
        store.close()
        store = SqliteStore(old)  # seeded once: reopening does not count the rows again
        assert store.spend_by_tenant() == {"t1": 0.75, "t2": 2.0}
        assert store.get_context("t1", "doc").answer_format is None  # type: ignore[union-attr]
        assert store.register_context("t1", "doc", "a", answer_format="x").answer_format == "x"
        assert store.integrity_problems() == []
        store.close()


def api_key(key_id: str, name: str, **fields: object) -> ApiKey:
    values: dict = {"key_hash": f"hash-{key_id}", "prefix": "sk-abcd…", "created": 1.0, **fields}
    return ApiKey(key_id=key_id, name=name, **values)


class TestBackgroundWriter:
    def test_batches_reach_the_sink_and_close_drains(self) -> None:
        seen: list[list[int]] = []
        writer: BackgroundWriter[int] = BackgroundWriter(lambda batch: seen.append(list(batch)))
        writer.start()
        for i in range(100):
            writer.put(i)
        writer.close()
        assert sorted(i for batch in seen for i in batch) == list(range(100))

    def test_full_queue_drops_and_counts(self) -> None:
        gate = threading.Event()
        writer: BackgroundWriter[int] = BackgroundWriter(lambda batch: gate.wait(5), max_queue=2)
        writer.start()
        results = [writer.put(i) for i in range(10)]
        assert not all(results) and writer.dropped == results.count(False)
        gate.set()
        writer.close()

    def test_a_failing_batch_does_not_stop_the_writer(self) -> None:
        seen: list[int] = []

        def sink(batch: list[int]) -> None:
            if 0 in batch:
                raise RuntimeError("disk on fire")
            seen.extend(batch)

        writer: BackgroundWriter[int] = BackgroundWriter(sink)
        writer.start()
        writer.put(0)
        assert writer.flush()
        writer.put(1)
        writer.close()
        assert seen == [1] and writer.failed_batches == 1
