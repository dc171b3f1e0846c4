"""The SQLite store's client keys and sleep-time spend (`router.store.base.KeyStore`).

A name is unique among live keys only (a partial index), so a revoked name can be given
to a new key. Sleep-time spend is one row per charge, with its time, so a report window
can sum what was charged inside it. `tenant_spend` keeps each tenant's dollars (requests
and sleep) as they are written, so a proxy starts without summing the requests table.
`usage` holds requests and tokens per tenant per second, which replicas share
(`router.proxy.usage_sync`); one process per SQLite file keeps it only for the contract.
"""

from __future__ import annotations

import dataclasses
import math
import sqlite3
import time
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager

from router.store.base import (
    USAGE_WINDOW_S,
    ApiKey,
    KeyExists,
    RequestRecord,
    UsageDelta,
    UsageTotals,
)

SCHEMA = """
CREATE TABLE IF NOT EXISTS api_keys (
    key_id TEXT PRIMARY KEY, name TEXT NOT NULL, key_hash TEXT NOT NULL UNIQUE,
    prefix TEXT NOT NULL, created REAL NOT NULL, revoked_at REAL, rpm INTEGER NOT NULL,
    tpm INTEGER NOT NULL, budget_usd REAL);
CREATE UNIQUE INDEX IF NOT EXISTS api_keys_live_name ON api_keys (name)
    WHERE revoked_at IS NULL;
CREATE TABLE IF NOT EXISTS sleep_spend (
    tenant TEXT NOT NULL, time REAL NOT NULL, usd REAL NOT NULL);
CREATE TABLE IF NOT EXISTS tenant_spend (tenant TEXT PRIMARY KEY, usd REAL NOT NULL);
CREATE TABLE IF NOT EXISTS usage (
    tenant TEXT NOT NULL, bucket INTEGER NOT NULL, requests INTEGER NOT NULL,
    tokens INTEGER NOT NULL, PRIMARY KEY (tenant, bucket));
"""
_COLUMNS = ", ".join(f.name for f in dataclasses.fields(ApiKey))
# Once, when a store from before `tenant_spend` is migrated: what it had spent so far.
SEED_SPEND = (
    "INSERT OR REPLACE INTO tenant_spend SELECT tenant, TOTAL(usd) FROM (SELECT tenant,"
    " cost_usd AS usd FROM requests WHERE cost_usd > 0 UNION ALL SELECT tenant, usd"
    " FROM sleep_spend) GROUP BY tenant"
)
_ADD_SPEND = (
    "INSERT INTO tenant_spend VALUES (?, ?)"
    " ON CONFLICT (tenant) DO UPDATE SET usd = usd + excluded.usd"
)
_ADD_USAGE = (
    "INSERT INTO usage VALUES (?, ?, ?, ?) ON CONFLICT (tenant, bucket) DO UPDATE SET"
    " requests = requests + excluded.requests, tokens = tokens + excluded.tokens"
)
_TOTALS = (
    "SELECT u.requests, u.tokens, s.usd, u.oldest FROM (SELECT SUM(requests) AS requests,"
    " SUM(tokens) AS tokens, MIN(bucket) AS oldest FROM usage WHERE tenant = ? AND bucket > ?)"
    " AS u, (SELECT TOTAL(usd) AS usd FROM tenant_spend WHERE tenant = ?) AS s"
)


class SqliteKeys:
    """Mixed into `SqliteStore`, whose connections and write lock it uses."""

    _read: Callable[[], sqlite3.Connection]
    _write: Callable[[], AbstractContextManager[sqlite3.Connection]]

    def create_key(self, key: ApiKey) -> ApiKey:
        marks = ", ".join("?" * len(dataclasses.fields(ApiKey)))
        sql = f"INSERT INTO api_keys ({_COLUMNS}) VALUES ({marks})"
        try:
            with self._write() as db:
                db.execute(sql, dataclasses.astuple(key))
        except sqlite3.IntegrityError as exc:
            raise KeyExists(f"a live key is already named {key.name!r}") from exc
        return key

    def list_keys(self) -> list[ApiKey]:
        rows = self._read().execute(f"SELECT {_COLUMNS} FROM api_keys ORDER BY created, rowid")
        return [ApiKey(*row) for row in rows]

    def revoke_key(self, name: str) -> ApiKey | None:
        sql = f"SELECT {_COLUMNS} FROM api_keys WHERE name = ? AND revoked_at IS NULL"
        with self._write() as db:
            row = db.execute(sql, (name,)).fetchone()
            if row is None:
                return None
            now = time.time()
            db.execute("UPDATE api_keys SET revoked_at = ? WHERE key_id = ?", (now, row[0]))
        return dataclasses.replace(ApiKey(*row), revoked_at=now)

    def key_by_hash(self, key_hash: str) -> ApiKey | None:
        sql = f"SELECT {_COLUMNS} FROM api_keys WHERE key_hash = ?"
        row = self._read().execute(sql, (key_hash,)).fetchone()
        return ApiKey(*row) if row else None

    def add_sleep_spend(self, tenant: str, usd: float) -> None:
        with self._write() as db:
            db.execute("INSERT INTO sleep_spend VALUES (?, ?, ?)", (tenant, time.time(), usd))
            db.execute(_ADD_SPEND, (tenant, usd))

    def spend_by_tenant(self) -> dict[str, float]:
        rows = self._read().execute("SELECT tenant, usd FROM tenant_spend")
        return {tenant: usd for tenant, usd in rows}

    def add_usage(self, deltas: Sequence[UsageDelta], now: float) -> dict[str, UsageTotals]:
        bucket = math.floor(now)
        written = [
            (d.tenant, bucket, d.requests, d.tokens) for d in deltas if d.requests or d.tokens
        ]
        with self._write() as db:
            db.executemany(_ADD_USAGE, written)
            return {d.tenant: _totals(db, d.tenant, now) for d in deltas}

    def prune_usage(self, before: float) -> int:
        with self._write() as db:
            return db.execute("DELETE FROM usage WHERE bucket < ?", (math.floor(before),)).rowcount


def add_request_spend(db: sqlite3.Connection, records: Sequence[RequestRecord]) -> None:
    """Requests' dollars onto `tenant_spend`, before they are written: a record written again
    (the journal replays what a crash may have stored already) counts its difference only."""
    latest = {(r.tenant, r.request_id): r.cost_usd for r in records}
    spent: dict[str, float] = {}
    sql = "SELECT cost_usd FROM requests WHERE tenant = ? AND request_id = ?"
    for (tenant, request_id), usd in latest.items():
        row = db.execute(sql, (tenant, request_id)).fetchone()
        spent[tenant] = spent.get(tenant, 0.0) + usd - (row[0] if row else 0.0)
    db.executemany(_ADD_SPEND, [(tenant, usd) for tenant, usd in spent.items() if usd])


def _totals(db: sqlite3.Connection, tenant: str, now: float) -> UsageTotals:
    window_start = math.floor(now) - USAGE_WINDOW_S
    row = db.execute(_TOTALS, (tenant, window_start, tenant)).fetchone()
    requests, tokens, usd, oldest = row
    return UsageTotals(requests or 0, tokens or 0, usd or 0.0, _float(oldest))


def _float(bucket: int | None) -> float | None:
    return None if bucket is None else float(bucket)
