"""The default store: one SQLite file in WAL mode.

WAL lets the event loop read while the background writer writes. Each thread
gets its own connection (sqlite3 connections are not shared safely), and one
lock serializes write transactions so writers queue in Python instead of
spinning on SQLITE_BUSY. `synchronous=NORMAL` is WAL's durable-on-checkpoint
mode: a power cut may lose the last transactions, never corrupt the file.

The schema is versioned in the `meta` table; a file written by a newer version
of this code is refused rather than misread (`sqlite_schema`). Client keys and spend
are in `sqlite_keys`, report queries in `sqlite_reports`. The file, its -wal and -shm
are 0600 (`files.make_private`): they hold tenants' contexts, answers and spend.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import sqlite3
import threading
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

from router.store import sqlite_keys, sqlite_reports
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
from router.store.files import make_private
from router.store.sqlite_keys import SqliteKeys, add_request_spend
from router.store.sqlite_lease import SqliteLease
from router.store.sqlite_reports import window_aggregates
from router.store.sqlite_schema import SCHEMA, SCHEMA_VERSION, UPGRADES

_RECORD_COLUMNS = ", ".join(f.name for f in dataclasses.fields(RequestRecord))
_CONTEXT_COLUMNS = ", ".join(f.name for f in dataclasses.fields(ContextRecord))
_JOB_COLUMNS = "job_id, tenant, context_id, version, status, attempts, error"
_ANY_QUEUED = "SELECT 1 FROM sleep_jobs WHERE status = 'queued' LIMIT 1"
_MARK = "SELECT (SELECT MAX(rowid) FROM requests), (SELECT MAX(rowid) FROM feedback)"


class SqliteStore(SqliteKeys, SqliteLease):
    def __init__(self, path: Path | str, *, timeout_s: float = 10.0) -> None:
        self.path = Path(path)
        self._timeout_s = timeout_s
        self._local = threading.local()
        self._connections: list[sqlite3.Connection] = []
        self._write_lock = threading.Lock()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        make_private(self.path)
        self._migrate()

    # Requests and feedback.

    def add_records(self, records: Sequence[RequestRecord]) -> None:
        marks = ", ".join("?" * len(dataclasses.fields(RequestRecord)))
        sql = f"INSERT OR REPLACE INTO requests ({_RECORD_COLUMNS}) VALUES ({marks})"
        with self._write() as db:
            add_request_spend(db, records)
            db.executemany(sql, [dataclasses.astuple(r) for r in records])

    def get_record(self, tenant: str, request_id: str) -> RequestRecord | None:
        sql = f"SELECT {_RECORD_COLUMNS} FROM requests WHERE tenant = ? AND request_id = ?"
        row = self._read().execute(sql, (tenant, request_id)).fetchone()
        return RequestRecord(*row) if row else None

    def add_feedback(self, tenant: str, request_id: str, correct: bool) -> bool:
        with self._write() as db:
            if not _exists(db, "requests", tenant, request_id):
                return False
            db.execute(
                "INSERT OR REPLACE INTO feedback VALUES (?, ?, ?, ?)",
                (tenant, request_id, int(correct), time.time()),
            )
        return True

    def get_feedback(self, tenant: str, request_id: str) -> bool | None:
        sql = "SELECT correct FROM feedback WHERE tenant = ? AND request_id = ?"
        row = self._read().execute(sql, (tenant, request_id)).fetchone()
        return bool(row[0]) if row else None

    # Contexts.

    def sight_context(
        self, tenant: str, context_id: str, text: str, source: Source, times: int = 1
    ) -> ContextRecord:
        with self._write() as db:
            db.execute(
                "INSERT INTO contexts (tenant, context_id, version, text, source, seen, updated)"
                " VALUES (?, ?, 1, ?, ?, ?, ?) ON CONFLICT (tenant, context_id)"
                " DO UPDATE SET seen = seen + excluded.seen",
                (tenant, context_id, text, source, times, time.time()),
            )
            return _context(db, tenant, context_id)

    def register_context(
        self,
        tenant: str,
        context_id: str,
        text: str,
        expected_queries: float | None = None,
        answer_format: str | None = None,
    ) -> ContextRecord:
        with self._write() as db:
            known = _context_or_none(db, tenant, context_id)
            if known is None:
                db.execute(
                    "INSERT INTO contexts (tenant, context_id, version, text, source, seen,"
                    " updated) VALUES (?, ?, 1, ?, 'explicit', 0, ?)",
                    (tenant, context_id, text, time.time()),
                )
            elif known.text != text:
                _new_version(db, known, text)
            given = {"expected_queries": expected_queries, "answer_format": answer_format}
            for column, value in given.items():
                if value is not None:
                    sql = f"UPDATE contexts SET {column} = ? WHERE tenant = ? AND context_id = ?"
                    db.execute(sql, (value, tenant, context_id))
            return _context(db, tenant, context_id)

    def get_context(self, tenant: str, context_id: str) -> ContextRecord | None:
        return _context_or_none(self._read(), tenant, context_id)

    # Sleep-time jobs.

    def queue_sleep(self, tenant: str, context_id: str, version: int) -> bool:
        now = time.time()
        with self._write() as db:
            cursor = db.execute(
                "INSERT OR IGNORE INTO sleep_jobs (tenant, context_id, version, status, created,"
                " updated) VALUES (?, ?, ?, 'queued', ?, ?)",
                (tenant, context_id, version, now, now),
            )
            if cursor.rowcount:
                _set_context_status(db, tenant, context_id, version, "queued")
            return bool(cursor.rowcount)

    def claim_job(self) -> SleepJob | None:
        """An idle worker asks often: a read answers "nothing queued" without a write lock."""
        if self._read().execute(_ANY_QUEUED).fetchone() is None:
            return None
        with self._write() as db:
            row = db.execute(
                f"SELECT {_JOB_COLUMNS} FROM sleep_jobs WHERE status = 'queued'"
                " ORDER BY job_id LIMIT 1"
            ).fetchone()
            if row is None:
                return None
            job = SleepJob(*row)
            db.execute(
                "UPDATE sleep_jobs SET status = 'running', attempts = attempts + 1, updated = ?"
                " WHERE job_id = ?",
                (time.time(), job.job_id),
            )
            _set_context_status(db, job.tenant, job.context_id, job.version, "running")
            return dataclasses.replace(job, status="running", attempts=job.attempts + 1)

    def finish_job(self, job: SleepJob, learned: LearnedRecord) -> None:
        """A context re-registered while its job ran keeps its new version's state."""
        with self._write() as db:
            _set_job(db, job.job_id, "done", None)
            db.execute(
                "UPDATE contexts SET learned = ?, anticipated = ?, sleep_tokens = ?,"
                " truncated_passes = ?, sleep_status = 'done', error = NULL, updated = ?"
                " WHERE tenant = ? AND context_id = ? AND version = ?",
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
        with self._write() as db:
            _set_job(db, job.job_id, "failed", reason)
            db.execute(
                "UPDATE contexts SET sleep_status = 'failed', error = ?, updated = ?"
                " WHERE tenant = ? AND context_id = ? AND version = ?",
                (reason, time.time(), job.tenant, job.context_id, job.version),
            )

    def requeue_running(self) -> int:
        with self._write() as db:
            cursor = db.execute("UPDATE sleep_jobs SET status = 'queued' WHERE status = 'running'")
            db.execute("UPDATE contexts SET sleep_status = 'queued' WHERE sleep_status = 'running'")
            return cursor.rowcount

    def job_counts(self) -> dict[str, int]:
        rows = self._read().execute("SELECT status, COUNT(*) FROM sleep_jobs GROUP BY status")
        return {status: count for status, count in rows}

    # Reports (`StoreReader`): scans, for a thread or process of their own.

    def mark(self, at: float | None = None) -> Mark:
        """Rows get the next rowid when they are written (REPLACE too), so the largest
        rowid marks how far the table had got; one statement reads both tables at once."""
        row = self._read().execute(_MARK).fetchone()
        return Mark(row[0] or 0, row[1] or 0, time.time() if at is None else at)

    def aggregates(self, start: Mark, end: Mark) -> Aggregates:
        with self._snapshot() as db:
            return window_aggregates(db, start, end)

    def labeled_requests(self, tenant: str | None = None) -> list[tuple[RequestRecord, bool]]:
        return sqlite_reports.labeled_requests(self._read(), tenant)

    def request_counts(
        self, tenant: str | None = None
    ) -> dict[tuple[str, str | None, int | None], int]:
        return sqlite_reports.request_counts(self._read(), tenant)

    # Housekeeping.

    def integrity_problems(self) -> list[str]:
        rows = self._read().execute("PRAGMA integrity_check").fetchall()
        problems = [row[0] for row in rows if row[0] != "ok"]
        version = self._schema_version(self._read())
        if version != SCHEMA_VERSION:
            problems.append(f"schema version {version}, expected {SCHEMA_VERSION}")
        return problems

    def close(self) -> None:
        """Closes every thread's connection; a thread that reads afterwards reopens its own."""
        with self._write_lock:
            connections, self._connections = self._connections, []
            self._local = threading.local()
        for connection in connections:
            connection.close()

    def _connect(self) -> sqlite3.Connection:
        try:
            db = sqlite3.connect(
                self.path, timeout=self._timeout_s, isolation_level=None, check_same_thread=False
            )
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=NORMAL")
        except sqlite3.Error as exc:
            raise StoreError(f"cannot open store {self.path}: {exc}") from exc
        return db

    def _read(self) -> sqlite3.Connection:
        db = getattr(self._local, "db", None)
        if db is None:
            db = self._local.db = self._connect()
            with self._write_lock:
                self._connections.append(db)
        return db

    @contextlib.contextmanager
    def _snapshot(self) -> Iterator[sqlite3.Connection]:
        """One read transaction: every figure of a report comes from the same state."""
        db = self._read()
        db.execute("BEGIN")
        try:
            yield db
        finally:
            db.execute("COMMIT")

    @contextlib.contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        db = self._read()
        with self._write_lock:
            db.execute("BEGIN IMMEDIATE")
            try:
                yield db
            except BaseException:
                db.execute("ROLLBACK")
                raise
            db.execute("COMMIT")

    def _migrate(self) -> None:
        """Idempotent: every statement is CREATE ... IF NOT EXISTS, safe to race another process."""
        try:
            self._read().executescript(SCHEMA + sqlite_keys.SCHEMA)
        except sqlite3.DatabaseError as exc:
            raise StoreError(f"{self.path} is not a usable sleeptime store: {exc}") from exc
        with self._write() as db:
            db.execute(
                "INSERT OR IGNORE INTO meta VALUES ('schema_version', ?)", (str(SCHEMA_VERSION),)
            )
            version = self._schema_version(db)
            if version is not None and version > SCHEMA_VERSION:
                raise StoreError(
                    f"{self.path} has schema version {version}; this sleeptime knows "
                    f"{SCHEMA_VERSION}: upgrade sleeptime or use another --db"
                )
            for step in range(version or SCHEMA_VERSION, SCHEMA_VERSION):
                _upgrade(db, UPGRADES[step])
                db.execute(
                    "UPDATE meta SET value = ? WHERE key = 'schema_version'", (str(step + 1),)
                )

    @staticmethod
    def _schema_version(db: sqlite3.Connection) -> int | None:
        row = db.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
        return int(row[0]) if row else None


def _upgrade(db: sqlite3.Connection, statement: str) -> None:
    """A table created by this version's SCHEMA already has the column a step adds."""
    try:
        db.execute(statement)
    except sqlite3.OperationalError as exc:
        if "duplicate column" not in str(exc):
            raise


def _exists(db: sqlite3.Connection, table: str, tenant: str, request_id: str) -> bool:
    sql = f"SELECT 1 FROM {table} WHERE tenant = ? AND request_id = ?"
    return db.execute(sql, (tenant, request_id)).fetchone() is not None


def _context_or_none(db: sqlite3.Connection, tenant: str, context_id: str) -> ContextRecord | None:
    sql = f"SELECT {_CONTEXT_COLUMNS} FROM contexts WHERE tenant = ? AND context_id = ?"
    row = db.execute(sql, (tenant, context_id)).fetchone()
    if row is None:
        return None
    values = list(row)
    values[8] = json.loads(values[8]) if values[8] else None  # anticipated
    return ContextRecord(*values)


def _context(db: sqlite3.Connection, tenant: str, context_id: str) -> ContextRecord:
    record = _context_or_none(db, tenant, context_id)
    assert record is not None, "written in the same transaction"
    return record


def _new_version(db: sqlite3.Connection, known: ContextRecord, text: str) -> None:
    """What was learned about the old text says nothing reliable about the new one."""
    db.execute(
        "UPDATE contexts SET version = version + 1, text = ?, source = 'explicit',"
        " sleep_status = NULL, learned = NULL, anticipated = NULL, sleep_tokens = 0,"
        " truncated_passes = 0, error = NULL, updated = ? WHERE tenant = ? AND context_id = ?",
        (text, time.time(), known.tenant, known.context_id),
    )
    db.execute(
        "UPDATE sleep_jobs SET status = 'superseded', updated = ?"
        " WHERE tenant = ? AND context_id = ? AND status = 'queued'",
        (time.time(), known.tenant, known.context_id),
    )


def _set_job(db: sqlite3.Connection, job_id: int, status: str, error: str | None) -> None:
    db.execute(
        "UPDATE sleep_jobs SET status = ?, error = ?, updated = ? WHERE job_id = ?",
        (status, error, time.time(), job_id),
    )


def _set_context_status(
    db: sqlite3.Connection, tenant: str, context_id: str, version: int, status: str
) -> None:
    db.execute(
        "UPDATE contexts SET sleep_status = ?, updated = ?"
        " WHERE tenant = ? AND context_id = ? AND version = ?",
        (status, time.time(), tenant, context_id, version),
    )
