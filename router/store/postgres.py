"""The shared store: PostgreSQL, for several proxy replicas on one database.

Each method is one transaction on a connection from a small pool (the proxy reads on its
event loop and writes from a background thread; a handful of connections serve both).
Behaviour mirrors `router.store.sqlite` method by method and passes the same contract
(`tests/router/test_store.py`); what differs is what several processes need:

- The sleep-time queue is claimed with `SELECT ... FOR UPDATE SKIP LOCKED`: two replicas
  never claim the same job, and neither waits on the other's claim. A claim carries a
  lease (`lease_s`, by the database's clock): a job whose claimer died is claimable again
  once its lease ran out, without anyone calling `requeue_running`. A live claimer renews
  its lease while it works (`renew_lease`), so the lease bounds how long a dead replica's
  job waits, not how long a job may take.
- The number of attempts fences a claim: `finish_job`/`fail_job` of a claim that ran out
  and was claimed again change nothing, so a job's result is stored once, by its last
  claimer.
- `requeue_running` puts back only jobs whose lease ran out. On SQLite (one process per
  file) it puts back every running job, since at start nobody else can be running one;
  here another live replica may be.
- `register_context` locks the context's row, so a new version and the superseding of
  its queued jobs commit together or not at all; jobs a claimer holds at that moment are
  left to it (SKIP LOCKED), as SQLite leaves running jobs, and never deadlock with it.

The schema and its migrations are in `postgres_schema`, keys in `postgres_keys`, report
queries in `postgres_reports`; lease renewal and change notifications (each context write
but a sighting's count NOTIFYs) in `postgres_replicas`.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import time
import urllib.parse
from collections.abc import Iterator, Sequence
from typing import Any

import psycopg
from psycopg import Connection
from psycopg_pool import ConnectionPool

from router.settings import safe_url
from router.store import postgres_reports
from router.store.base import (
    Aggregates,
    ContextRecord,
    LearnedRecord,
    Mark,
    RequestRecord,
    SleepJob,
    Source,
    StoreError,
)
from router.store.postgres_keys import PostgresKeys, add_request_spend
from router.store.postgres_replicas import PostgresReplicas, notify
from router.store.postgres_schema import SCHEMA_VERSION, migrate, schema_version

Db = Connection[Any]
_RECORD_FIELDS = [f.name for f in dataclasses.fields(RequestRecord)]
_RECORD_COLUMNS = ", ".join(_RECORD_FIELDS)
_CONTEXT_COLUMNS = ", ".join(f.name for f in dataclasses.fields(ContextRecord))
_JOB_COLUMNS = "job_id, tenant, context_id, version, status, attempts, error"
_NOW = "EXTRACT(EPOCH FROM clock_timestamp())::float8"
_ADD_RECORD = (
    f"INSERT INTO requests ({_RECORD_COLUMNS}) VALUES ({', '.join(['%s'] * len(_RECORD_FIELDS))})"
    " ON CONFLICT (tenant, request_id) DO UPDATE SET "
    + ", ".join(f"{name} = excluded.{name}" for name in _RECORD_FIELDS[2:])
    + ", row_seq = nextval(pg_get_serial_sequence('requests', 'row_seq'))"
)
_CLAIM = (
    "UPDATE sleep_jobs SET status = 'running', attempts = attempts + 1, updated = %s,"
    f" lease_until = {_NOW} + %s WHERE job_id = (SELECT job_id FROM sleep_jobs"
    f" WHERE status = 'queued' OR (status = 'running' AND lease_until < {_NOW})"
    f" ORDER BY job_id LIMIT 1 FOR UPDATE SKIP LOCKED) RETURNING {_JOB_COLUMNS}"
)
_REQUEUE = (
    "UPDATE sleep_jobs SET status = 'queued', lease_until = NULL, updated = %s"
    " WHERE job_id IN (SELECT job_id FROM sleep_jobs WHERE status = 'running'"
    f" AND lease_until < {_NOW} FOR UPDATE SKIP LOCKED) RETURNING tenant, context_id, version"
)
_MARK = "SELECT (SELECT MAX(row_seq) FROM requests), (SELECT MAX(row_seq) FROM feedback)"


class PostgresStore(PostgresKeys, PostgresReplicas):
    def __init__(
        self, url: str, *, lease_s: float = 60.0, pool_size: int = 4, timeout_s: float = 10.0
    ) -> None:
        """`lease_s`: how long a claimed sleep-time job is its claimer's, unless renewed,
        before another replica may claim it."""
        self.url = url
        self.lease_s = lease_s
        self._where = safe_url(url)
        try:
            with psycopg.connect(url, connect_timeout=max(1, int(timeout_s))) as db:
                migrate(db, self._where)
        except psycopg.Error as exc:
            raise StoreError(f"cannot open store {self._where}: {_scrubbed(exc, url)}") from None
        self._pool: ConnectionPool[Db] = ConnectionPool(
            url, min_size=1, max_size=pool_size, timeout=timeout_s, open=True, name="sleeptime"
        )

    # Requests and feedback.

    def add_records(self, records: Sequence[RequestRecord]) -> None:
        with self._tx() as db, db.cursor() as cursor:
            add_request_spend(db, records)
            cursor.executemany(_ADD_RECORD, [dataclasses.astuple(r) for r in records])

    def get_record(self, tenant: str, request_id: str) -> RequestRecord | None:
        sql = f"SELECT {_RECORD_COLUMNS} FROM requests WHERE tenant = %s AND request_id = %s"
        with self._tx() as db:
            row = db.execute(sql, (tenant, request_id)).fetchone()
        return RequestRecord(*row) if row else None

    def add_feedback(self, tenant: str, request_id: str, correct: bool) -> bool:
        with self._tx() as db:
            sql = "SELECT 1 FROM requests WHERE tenant = %s AND request_id = %s"
            if db.execute(sql, (tenant, request_id)).fetchone() is None:
                return False
            db.execute(
                "INSERT INTO feedback (tenant, request_id, correct, time) VALUES (%s, %s, %s, %s)"
                " ON CONFLICT (tenant, request_id) DO UPDATE SET correct = excluded.correct,"
                " time = excluded.time,"
                " row_seq = nextval(pg_get_serial_sequence('feedback', 'row_seq'))",
                (tenant, request_id, correct, time.time()),
            )
        return True

    def get_feedback(self, tenant: str, request_id: str) -> bool | None:
        sql = "SELECT correct FROM feedback WHERE tenant = %s AND request_id = %s"
        with self._tx() as db:
            row = db.execute(sql, (tenant, request_id)).fetchone()
        return bool(row[0]) if row else None

    # Contexts.

    def sight_context(
        self, tenant: str, context_id: str, text: str, source: Source, times: int = 1
    ) -> ContextRecord:
        with self._tx() as db:
            row = db.execute(
                "INSERT INTO contexts (tenant, context_id, version, text, source, seen, updated)"
                " VALUES (%s, %s, 1, %s, %s, %s, %s) ON CONFLICT (tenant, context_id)"
                f" DO UPDATE SET seen = contexts.seen + excluded.seen RETURNING {_CONTEXT_COLUMNS}",
                (tenant, context_id, text, source, times, time.time()),
            ).fetchone()
        return _context_of(row)

    def register_context(
        self,
        tenant: str,
        context_id: str,
        text: str,
        expected_queries: float | None = None,
        answer_format: str | None = None,
    ) -> ContextRecord:
        with self._tx() as db:
            db.execute(
                "INSERT INTO contexts (tenant, context_id, version, text, source, seen, updated)"
                " VALUES (%s, %s, 1, %s, 'explicit', 0, %s) ON CONFLICT DO NOTHING",
                (tenant, context_id, text, time.time()),
            )
            known = _context_or_none(db, tenant, context_id, lock=True)
            assert known is not None, "inserted above or there already"
            if known.text != text:
                _new_version(db, known, text)
            given = {"expected_queries": expected_queries, "answer_format": answer_format}
            for column, value in given.items():
                if value is not None:
                    sql = f"UPDATE contexts SET {column} = %s WHERE tenant = %s AND context_id = %s"
                    db.execute(sql, (value, tenant, context_id))
            notify(db, tenant, context_id)
            record = _context_or_none(db, tenant, context_id)
        assert record is not None
        return record

    def get_context(self, tenant: str, context_id: str) -> ContextRecord | None:
        with self._tx() as db:
            return _context_or_none(db, tenant, context_id)

    # Sleep-time jobs.

    def queue_sleep(self, tenant: str, context_id: str, version: int) -> bool:
        now = time.time()
        with self._tx() as db:
            row = db.execute(
                "INSERT INTO sleep_jobs (tenant, context_id, version, status, created, updated)"
                " VALUES (%s, %s, %s, 'queued', %s, %s) ON CONFLICT DO NOTHING RETURNING job_id",
                (tenant, context_id, version, now, now),
            ).fetchone()
            if row is not None:
                _set_context_status(db, tenant, context_id, version, "queued")
        return row is not None

    def claim_job(self) -> SleepJob | None:
        """The oldest queued job, or the oldest whose claimer's lease ran out."""
        with self._tx() as db:
            row = db.execute(_CLAIM, (time.time(), self.lease_s)).fetchone()
            if row is None:
                return None
            job = SleepJob(*row)
            _set_context_status(db, job.tenant, job.context_id, job.version, "running")
        return job

    def finish_job(self, job: SleepJob, learned: LearnedRecord) -> None:
        """A context re-registered while its job ran keeps its new version's state."""
        with self._tx() as db:
            if not _end_claim(db, job, "done", None):
                return
            db.execute(
                "UPDATE contexts SET learned = %s, anticipated = %s, sleep_tokens = %s,"
                " truncated_passes = %s, sleep_status = 'done', error = NULL, updated = %s"
                " WHERE tenant = %s AND context_id = %s AND version = %s",
                (
                    learned.text,
                    json.dumps(learned.anticipated),
                    learned.sleep_tokens,
                    learned.truncated_passes,
                    time.time(),
                    job.tenant,
                    job.context_id,
                    job.version,
                ),
            )

    def fail_job(self, job: SleepJob, reason: str) -> None:
        with self._tx() as db:
            if not _end_claim(db, job, "failed", reason):
                return
            db.execute(
                "UPDATE contexts SET sleep_status = 'failed', error = %s, updated = %s"
                " WHERE tenant = %s AND context_id = %s AND version = %s",
                (reason, time.time(), job.tenant, job.context_id, job.version),
            )

    def requeue_running(self) -> int:
        """Only jobs whose lease ran out: another replica may be running the others."""
        with self._tx() as db:
            rows = db.execute(_REQUEUE, (time.time(),)).fetchall()
            for tenant, context_id, version in rows:
                _set_context_status(db, tenant, context_id, version, "queued")
        return len(rows)

    def job_counts(self) -> dict[str, int]:
        with self._tx() as db:
            rows = db.execute("SELECT status, COUNT(*) FROM sleep_jobs GROUP BY status")
            return {status: count for status, count in rows}

    # Reports (`StoreReader`).

    def mark(self, at: float | None = None) -> Mark:
        """Concurrent writers take sequence numbers before they commit, so a row can land
        just below a mark already taken: a report window may then miss it (see the docs)."""
        with self._tx() as db:
            row = db.execute(_MARK).fetchone()
        assert row is not None
        return Mark(row[0] or 0, row[1] or 0, time.time() if at is None else at)

    def aggregates(self, start: Mark, end: Mark) -> Aggregates:
        with self._snapshot() as db:
            return postgres_reports.window_aggregates(db, start, end)

    def labeled_requests(self, tenant: str | None = None) -> list[tuple[RequestRecord, bool]]:
        with self._tx() as db:
            return postgres_reports.labeled_requests(db, tenant)

    def request_counts(
        self, tenant: str | None = None
    ) -> dict[tuple[str, str | None, int | None], int]:
        with self._tx() as db:
            return postgres_reports.request_counts(db, tenant)

    # Housekeeping.

    def integrity_problems(self) -> list[str]:
        with self._tx() as db:
            version = schema_version(db)
        if version != SCHEMA_VERSION:
            return [f"schema version {version}, expected {SCHEMA_VERSION}"]
        return []

    def close(self) -> None:
        self._pool.close()

    @contextlib.contextmanager
    def _tx(self) -> Iterator[Db]:
        """One transaction: committed when the block ends, rolled back when it raises."""
        with self._pool.connection() as db:
            yield db

    @contextlib.contextmanager
    def _snapshot(self) -> Iterator[Db]:
        """Every figure of a report from the same state."""
        with self._tx() as db:
            db.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
            yield db


def _scrubbed(exc: Exception, url: str) -> str:
    """The driver's message without the URL's password, should the message quote it."""
    text = str(exc).strip()
    with contextlib.suppress(ValueError):
        password = urllib.parse.urlsplit(url).password
        if password:
            text = text.replace(password, "***").replace(urllib.parse.unquote(password), "***")
    return text


def _context_of(row: Sequence[Any] | None) -> ContextRecord:
    assert row is not None, "written in the same transaction"
    values = list(row)
    values[8] = json.loads(values[8]) if values[8] else None  # anticipated
    return ContextRecord(*values)


def _context_or_none(
    db: Db, tenant: str, context_id: str, *, lock: bool = False
) -> ContextRecord | None:
    sql = f"SELECT {_CONTEXT_COLUMNS} FROM contexts WHERE tenant = %s AND context_id = %s"
    row = db.execute(sql + (" FOR UPDATE" if lock else ""), (tenant, context_id)).fetchone()
    return _context_of(row) if row else None


def _new_version(db: Db, known: ContextRecord, text: str) -> None:
    """What was learned about the old text says nothing reliable about the new one."""
    now = time.time()
    db.execute(
        "UPDATE contexts SET version = version + 1, text = %s, source = 'explicit',"
        " sleep_status = NULL, learned = NULL, anticipated = NULL, sleep_tokens = 0,"
        " truncated_passes = 0, error = NULL, updated = %s"
        " WHERE tenant = %s AND context_id = %s",
        (text, now, known.tenant, known.context_id),
    )
    db.execute(
        "UPDATE sleep_jobs SET status = 'superseded', updated = %s WHERE job_id IN"
        " (SELECT job_id FROM sleep_jobs WHERE tenant = %s AND context_id = %s"
        " AND status = 'queued' FOR UPDATE SKIP LOCKED)",
        (now, known.tenant, known.context_id),
    )


def _end_claim(db: Db, job: SleepJob, status: str, error: str | None) -> bool:
    """False when this claim is no longer the job's: it ran out and another took it."""
    cursor = db.execute(
        "UPDATE sleep_jobs SET status = %s, error = %s, updated = %s, lease_until = NULL"
        " WHERE job_id = %s AND status = 'running' AND attempts = %s",
        (status, error, time.time(), job.job_id, job.attempts),
    )
    if cursor.rowcount == 1:
        notify(db, job.tenant, job.context_id)
    return cursor.rowcount == 1


def _set_context_status(db: Db, tenant: str, context_id: str, version: int, status: str) -> None:
    db.execute(
        "UPDATE contexts SET sleep_status = %s, updated = %s"
        " WHERE tenant = %s AND context_id = %s AND version = %s",
        (status, time.time(), tenant, context_id, version),
    )
    notify(db, tenant, context_id)
