"""The PostgreSQL store's schema: numbered migrations, each run once per database.

`MIGRATIONS[n]` takes a database from version n to n + 1; `meta.schema_version` says how
far it got. Replicas that start at once all call `migrate`: each takes the same
transaction-scoped advisory lock first, so one migrates and the others, let in after its
commit, find nothing left to do. A database a newer sleeptime migrated is refused rather
than misread.

Columns mirror the SQLite store's (`router.store.sqlite`), with two additions: `row_seq`
on requests, feedback and keys (a number taken at every write: what SQLite's rowid is to
report windows and list order) and `lease_until` on sleep jobs (when a claim runs out,
by the database's clock, so replicas' clocks need not agree).
"""

from __future__ import annotations

from typing import Any

from psycopg import Connection

from router.store.base import StoreError

# Any fixed number: every sleeptime that migrates takes this lock, nothing else does.
MIGRATION_LOCK = 0x51EE97
MIGRATIONS: tuple[str, ...] = (
    """
    CREATE TABLE requests (
        tenant TEXT NOT NULL, request_id TEXT NOT NULL, time DOUBLE PRECISION NOT NULL,
        route TEXT NOT NULL, status INTEGER NOT NULL, context_id TEXT, context_version INTEGER,
        rung TEXT, model TEXT, prompt_tokens BIGINT NOT NULL, completion_tokens BIGINT NOT NULL,
        cached_tokens BIGINT NOT NULL, latency_ms DOUBLE PRECISION NOT NULL,
        cost DOUBLE PRECISION NOT NULL, error_code TEXT,
        cost_usd DOUBLE PRECISION NOT NULL DEFAULT 0,
        row_seq BIGSERIAL NOT NULL, PRIMARY KEY (tenant, request_id));
    CREATE INDEX requests_row_seq ON requests (row_seq);
    CREATE TABLE contexts (
        tenant TEXT NOT NULL, context_id TEXT NOT NULL, version INTEGER NOT NULL,
        text TEXT NOT NULL, source TEXT NOT NULL, seen BIGINT NOT NULL, sleep_status TEXT,
        learned TEXT, anticipated TEXT, sleep_tokens BIGINT NOT NULL DEFAULT 0, error TEXT,
        updated DOUBLE PRECISION NOT NULL, expected_queries DOUBLE PRECISION,
        truncated_passes INTEGER NOT NULL DEFAULT 0, PRIMARY KEY (tenant, context_id));
    CREATE TABLE sleep_jobs (
        job_id BIGSERIAL PRIMARY KEY, tenant TEXT NOT NULL, context_id TEXT NOT NULL,
        version INTEGER NOT NULL, status TEXT NOT NULL, attempts INTEGER NOT NULL DEFAULT 0,
        error TEXT, created DOUBLE PRECISION NOT NULL, updated DOUBLE PRECISION NOT NULL,
        lease_until DOUBLE PRECISION, UNIQUE (tenant, context_id, version));
    CREATE INDEX sleep_jobs_open ON sleep_jobs (job_id) WHERE status IN ('queued', 'running');
    CREATE INDEX sleep_jobs_ended ON sleep_jobs (updated) WHERE status IN ('done', 'failed');
    CREATE TABLE feedback (
        tenant TEXT NOT NULL, request_id TEXT NOT NULL, correct BOOLEAN NOT NULL,
        time DOUBLE PRECISION NOT NULL, row_seq BIGSERIAL NOT NULL,
        PRIMARY KEY (tenant, request_id));
    CREATE INDEX feedback_row_seq ON feedback (row_seq);
    CREATE TABLE api_keys (
        key_id TEXT PRIMARY KEY, name TEXT NOT NULL, key_hash TEXT NOT NULL UNIQUE,
        prefix TEXT NOT NULL, created DOUBLE PRECISION NOT NULL,
        revoked_at DOUBLE PRECISION, rpm BIGINT NOT NULL, tpm BIGINT NOT NULL,
        budget_usd DOUBLE PRECISION, row_seq BIGSERIAL NOT NULL);
    CREATE UNIQUE INDEX api_keys_live_name ON api_keys (name) WHERE revoked_at IS NULL;
    CREATE TABLE sleep_spend (
        tenant TEXT NOT NULL, time DOUBLE PRECISION NOT NULL, usd DOUBLE PRECISION NOT NULL);
    CREATE INDEX sleep_spend_time ON sleep_spend (time);
    """,
    # Shared limits: spend per tenant kept as it is written (seeded once from the rows so
    # far), requests and tokens per tenant per second; and a context's answer format.
    """
    ALTER TABLE contexts ADD COLUMN answer_format TEXT;
    CREATE TABLE tenant_spend (tenant TEXT PRIMARY KEY, usd DOUBLE PRECISION NOT NULL);
    INSERT INTO tenant_spend SELECT tenant, SUM(usd) FROM (SELECT tenant, cost_usd AS usd
        FROM requests WHERE cost_usd > 0 UNION ALL SELECT tenant, usd FROM sleep_spend)
        AS spent GROUP BY tenant;
    CREATE TABLE usage (
        tenant TEXT NOT NULL, bucket BIGINT NOT NULL, requests BIGINT NOT NULL,
        tokens BIGINT NOT NULL, PRIMARY KEY (tenant, bucket));
    CREATE INDEX usage_bucket ON usage (bucket);
    """,
)
SCHEMA_VERSION = len(MIGRATIONS)
_META = "CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)"
_VERSION = "SELECT value FROM meta WHERE key = 'schema_version'"


def migrate(db: Connection[Any], where: str) -> int:
    """Brings the database to SCHEMA_VERSION in one transaction; `where` names it in errors.

    `db` is an open connection outside a transaction. Returns the version it found (0 for
    a fresh database)."""
    with db.transaction():
        db.execute("SELECT pg_advisory_xact_lock(%s)", (MIGRATION_LOCK,))
        db.execute(_META)
        found = schema_version(db) or 0
        if found > SCHEMA_VERSION:
            raise StoreError(
                f"{where} has schema version {found}; this sleeptime knows "
                f"{SCHEMA_VERSION}: upgrade sleeptime or use another store"
            )
        for step in range(found, SCHEMA_VERSION):
            db.execute(MIGRATIONS[step])  # no parameters: several statements
        db.execute(
            "INSERT INTO meta VALUES ('schema_version', %s)"
            " ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            (str(SCHEMA_VERSION),),
        )
    return found


def schema_version(db: Connection[Any]) -> int | None:
    row = db.execute(_VERSION).fetchone()
    return int(row[0]) if row else None
