"""The SQLite store's client keys and sleep-time spend (`router.store.base.KeyStore`).

A name is unique among live keys only (a partial index), so a revoked name can be given
to a new key. Sleep-time spend is one row per charge, with its time, so a report window
can sum what was charged inside it.
"""

from __future__ import annotations

import dataclasses
import sqlite3
import time
from collections.abc import Callable
from contextlib import AbstractContextManager

from router.store.base import ApiKey, KeyExists

SCHEMA = """
CREATE TABLE IF NOT EXISTS api_keys (
    key_id TEXT PRIMARY KEY, name TEXT NOT NULL, key_hash TEXT NOT NULL UNIQUE,
    prefix TEXT NOT NULL, created REAL NOT NULL, revoked_at REAL, rpm INTEGER NOT NULL,
    tpm INTEGER NOT NULL, budget_usd REAL);
CREATE UNIQUE INDEX IF NOT EXISTS api_keys_live_name ON api_keys (name)
    WHERE revoked_at IS NULL;
CREATE TABLE IF NOT EXISTS sleep_spend (
    tenant TEXT NOT NULL, time REAL NOT NULL, usd REAL NOT NULL);
"""
_COLUMNS = ", ".join(f.name for f in dataclasses.fields(ApiKey))
_SPEND = (
    "SELECT tenant, TOTAL(usd) FROM (SELECT tenant, cost_usd AS usd FROM requests"
    " WHERE cost_usd > 0 UNION ALL SELECT tenant, usd FROM sleep_spend) GROUP BY tenant"
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

    def spend_by_tenant(self) -> dict[str, float]:
        return {tenant: usd for tenant, usd in self._read().execute(_SPEND)}
