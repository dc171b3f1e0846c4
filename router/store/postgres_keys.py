"""The PostgreSQL store's client keys and sleep-time spend (`router.store.base.KeyStore`).

As on SQLite (`sqlite_keys`): a name is unique among live keys only (a partial unique
index, which also makes two replicas creating the same name at once give one KeyExists),
and sleep-time spend is one row per charge with its time. `tenant_spend` and `usage` are
what replicas share their per-key limits through (see `sqlite_keys`, and
`router.proxy.usage_sync`): rows are locked in tenant order, so two replicas' batches
wait for each other and never deadlock.
"""

from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from typing import Any

import psycopg
from psycopg import Connection

from router.store.base import (
    USAGE_WINDOW_S,
    ApiKey,
    KeyExists,
    RequestRecord,
    UsageDelta,
    UsageTotals,
)

_COLUMNS = ", ".join(f.name for f in dataclasses.fields(ApiKey))
_ADD_SPEND = (
    "INSERT INTO tenant_spend VALUES (%s, %s)"
    " ON CONFLICT (tenant) DO UPDATE SET usd = tenant_spend.usd + excluded.usd"
)
_ADD_USAGE = (
    "INSERT INTO usage VALUES (%s, %s, %s, %s) ON CONFLICT (tenant, bucket) DO UPDATE SET"
    " requests = usage.requests + excluded.requests, tokens = usage.tokens + excluded.tokens"
)
_TOTALS = (
    "SELECT t.tenant, u.requests, u.tokens, s.usd, u.oldest FROM unnest(%s::text[]) AS t(tenant)"
    " LEFT JOIN (SELECT tenant, SUM(requests) AS requests, SUM(tokens) AS tokens,"
    " MIN(bucket) AS oldest FROM usage WHERE tenant = ANY(%s) AND bucket > %s GROUP BY tenant)"
    " AS u USING (tenant) LEFT JOIN tenant_spend AS s USING (tenant)"
)
_OLD_COSTS = (
    "SELECT tenant, request_id, cost_usd FROM requests WHERE (tenant, request_id) IN"
    " (SELECT * FROM unnest(%s::text[], %s::text[]))"
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
            db.execute(_ADD_SPEND, (tenant, usd))

    def spend_by_tenant(self) -> dict[str, float]:
        with self._tx() as db:
            return {tenant: usd for tenant, usd in db.execute("SELECT * FROM tenant_spend")}

    def add_usage(self, deltas: Sequence[UsageDelta], now: float) -> dict[str, UsageTotals]:
        bucket = math.floor(now)
        written = sorted(
            (d.tenant, bucket, d.requests, d.tokens) for d in deltas if d.requests or d.tokens
        )
        tenants = sorted({d.tenant for d in deltas})
        with self._tx() as db, db.cursor() as cursor:
            if written:
                cursor.executemany(_ADD_USAGE, written)
            rows = cursor.execute(_TOTALS, (tenants, tenants, bucket - USAGE_WINDOW_S))
            return {
                tenant: UsageTotals(requests or 0, tokens or 0, usd or 0.0, _float(oldest))
                for tenant, requests, tokens, usd, oldest in rows
            }

    def prune_usage(self, before: float) -> int:
        with self._tx() as db:
            cursor = db.execute("DELETE FROM usage WHERE bucket < %s", (math.floor(before),))
            return cursor.rowcount


def add_request_spend(db: Connection[Any], records: Sequence[RequestRecord]) -> None:
    """Requests' dollars onto `tenant_spend`, in the transaction that writes them: a record
    written again (the journal replays what a crash may have stored) adds its difference."""
    latest = {(r.tenant, r.request_id): r.cost_usd for r in records}
    spent: dict[str, float] = {}
    for (tenant, _), usd in latest.items():
        spent[tenant] = spent.get(tenant, 0.0) + usd
    tenants, request_ids = [key[0] for key in latest], [key[1] for key in latest]
    for tenant, _, usd in db.execute(_OLD_COSTS, (tenants, request_ids)):
        spent[tenant] -= usd
    changed = sorted((tenant, usd) for tenant, usd in spent.items() if usd)
    if changed:
        with db.cursor() as cursor:
            cursor.executemany(_ADD_SPEND, changed)


def _float(bucket: int | None) -> float | None:
    return None if bucket is None else float(bucket)
