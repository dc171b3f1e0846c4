"""The PostgreSQL store's client keys and sleep-time spend (`router.store.base.KeyStore`).

As on SQLite (`sqlite_keys`): a name is unique among live keys only (a partial unique
index, which also makes two replicas creating the same name at once give one KeyExists),
and sleep-time spend is one row per charge with its time.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import Any

import psycopg
from psycopg import Connection

from router.store.base import ApiKey, KeyExists

_COLUMNS = ", ".join(f.name for f in dataclasses.fields(ApiKey))
_SPEND = (
    "SELECT tenant, SUM(usd) FROM (SELECT tenant, cost_usd AS usd FROM requests"
    " WHERE cost_usd > 0 UNION ALL SELECT tenant, usd FROM sleep_spend) AS spent GROUP BY tenant"
)


class PostgresKeys:
    """Mixed into `PostgresStore`, whose pooled transactions it uses."""

    _tx: Callable[[], AbstractContextManager[Connection[Any]]]

    def create_key(self, key: ApiKey) -> ApiKey:
        marks = ", ".join(["%s"] * len(dataclasses.fields(ApiKey)))
        sql = f"INSERT INTO api_keys ({_COLUMNS}) VALUES ({marks})"
        try:
            with self._tx() as db:
                db.execute(sql, dataclasses.astuple(key))
        except psycopg.errors.UniqueViolation as exc:
            raise KeyExists(f"a live key is already named {key.name!r}") from exc
        return key

    def list_keys(self) -> list[ApiKey]:
        with self._tx() as db:
            rows = db.execute(f"SELECT {_COLUMNS} FROM api_keys ORDER BY created, row_seq")
            return [ApiKey(*row) for row in rows]

    def revoke_key(self, name: str) -> ApiKey | None:
        sql = f"SELECT {_COLUMNS} FROM api_keys WHERE name = %s AND revoked_at IS NULL FOR UPDATE"
        with self._tx() as db:
            row = db.execute(sql, (name,)).fetchone()
            if row is None:
                return None
            now = time.time()
            db.execute("UPDATE api_keys SET revoked_at = %s WHERE key_id = %s", (now, row[0]))
        return dataclasses.replace(ApiKey(*row), revoked_at=now)

    def key_by_hash(self, key_hash: str) -> ApiKey | None:
        with self._tx() as db:
            sql = f"SELECT {_COLUMNS} FROM api_keys WHERE key_hash = %s"
            row = db.execute(sql, (key_hash,)).fetchone()
        return ApiKey(*row) if row else None

    def add_sleep_spend(self, tenant: str, usd: float) -> None:
        with self._tx() as db:
            db.execute("INSERT INTO sleep_spend VALUES (%s, %s, %s)", (tenant, time.time(), usd))

    def spend_by_tenant(self) -> dict[str, float]:
        with self._tx() as db:
            return {tenant: usd for tenant, usd in db.execute(_SPEND)}
