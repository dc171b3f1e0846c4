"""The PostgreSQL store's report queries, as `sqlite_reports` answers them on SQLite.

A window is the rows written between two `Mark`s: a `row_seq` range (every write, an
upsert too, takes the next number), read from one REPEATABLE READ snapshot.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from psycopg import Connection

from router.store.base import Aggregates, Mark, RequestRecord

Db = Connection[Any]
_IN_RANGE = "FROM requests WHERE row_seq > %s AND row_seq <= %s"
_RECORD_COLUMNS = ", ".join(f"r.{f.name}" for f in dataclasses.fields(RequestRecord))


def window_aggregates(db: Db, start: Mark, end: Mark) -> Aggregates:
    rows = (start.requests, end.requests)
    statuses = _counts(db, "status / 100", rows)
    return Aggregates(
        **_request_totals(db, rows),
        by_route=_counts(db, "route", rows),
        by_status={f"{status}xx": n for status, n in statuses.items()},
        **_latencies(db, rows),
        feedback_by_route=_feedback(db, (start.feedback, end.feedback)),
        **_sleep_work(db, start.time, end.time),
        sleep_spend_usd=_sleep_spend(db, start.time, end.time),
    )


def _request_totals(db: Db, rows: tuple[int, int]) -> dict[str, int | float]:
    sums = ", ".join(
        f"COALESCE(SUM({c}), 0)"
        for c in ("prompt_tokens", "completion_tokens", "cached_tokens", "cost", "cost_usd")
    )
    row = db.execute(
        f"SELECT COUNT(*), COUNT(DISTINCT tenant), {sums} {_IN_RANGE}", rows
    ).fetchone()
    assert row is not None
    names = ("requests", "tenants", "prompt_tokens", "completion_tokens", "cached_tokens")
    return {
        **{name: int(value) for name, value in zip(names, row[:5], strict=True)},
        "cost": float(row[5]),
        "spend_usd": float(row[6]),
    }


def _counts(db: Db, expression: str, rows: tuple[int, int]) -> dict[str, int]:
    sql = f"SELECT {expression}, COUNT(*) {_IN_RANGE} GROUP BY 1 ORDER BY 1"
    return {str(key): n for key, n in db.execute(sql, rows)}


def _latencies(db: Db, rows: tuple[int, int]) -> dict[str, float | None]:
    """Nearest-rank percentiles, as on SQLite: sorted by the database."""
    answered = f"{_IN_RANGE} AND status < 400"
    n = _one(db, f"SELECT COUNT(*) {answered}", rows)
    nth = f"SELECT latency_ms {answered} ORDER BY latency_ms LIMIT 1 OFFSET %s"
    return {
        f"latency_p{p}_ms": _one(db, nth, (*rows, -(-p * n // 100) - 1)) if n else None
        for p in (50, 95)
    }


def _one(db: Db, sql: str, args: tuple[object, ...]) -> Any:
    row = db.execute(sql, args).fetchone()
    assert row is not None, "an aggregate or a row within COUNT(*)"
    return row[0]


def _feedback(db: Db, rows: tuple[int, int]) -> dict[str, tuple[int, int]]:
    sql = (
        "SELECT r.route, COUNT(*), SUM(f.correct::int) FROM feedback f JOIN requests r"
        " ON r.tenant = f.tenant AND r.request_id = f.request_id"
        " WHERE f.row_seq > %s AND f.row_seq <= %s GROUP BY r.route ORDER BY r.route"
    )
    return {route: (n, int(correct)) for route, n, correct in db.execute(sql, rows)}


def _sleep_work(db: Db, since: float, until: float) -> dict[str, int]:
    """Tokens of the version a job learned; a failed job stored none."""
    sql = (
        "SELECT j.status, COUNT(*), COALESCE(SUM(c.sleep_tokens), 0) FROM sleep_jobs j"
        " LEFT JOIN contexts c ON j.status = 'done' AND c.tenant = j.tenant"
        " AND c.context_id = j.context_id AND c.version = j.version"
        " WHERE j.status IN ('done', 'failed') AND j.updated > %s AND j.updated <= %s"
        " GROUP BY j.status"
    )
    found = {status: (n, int(tokens)) for status, n, tokens in db.execute(sql, (since, until))}
    done, failed = found.get("done", (0, 0)), found.get("failed", (0, 0))
    return {"sleep_done": done[0], "sleep_failed": failed[0], "sleep_tokens": done[1]}


def _sleep_spend(db: Db, since: float, until: float) -> float:
    """Charged when a job ended: the window that counts the job counts its dollars."""
    sql = "SELECT COALESCE(SUM(usd), 0) FROM sleep_spend WHERE time > %s AND time <= %s"
    row = db.execute(sql, (since, until)).fetchone()
    return float(row[0]) if row else 0.0


def labeled_requests(db: Db, tenant: str | None) -> list[tuple[RequestRecord, bool]]:
    sql = (
        f"SELECT {_RECORD_COLUMNS}, f.correct FROM requests r JOIN feedback f"
        " ON f.tenant = r.tenant AND f.request_id = r.request_id"
        ' WHERE %s::text IS NULL OR r.tenant = %s ORDER BY r.time, r.request_id COLLATE "C"'
    )
    rows = db.execute(sql, (tenant, tenant))
    return [(RequestRecord(*row[:-1]), bool(row[-1])) for row in rows]


def request_counts(db: Db, tenant: str | None) -> dict[tuple[str, str | None, int | None], int]:
    sql = (
        "SELECT tenant, context_id, context_version, COUNT(*) FROM requests"
        " WHERE %s::text IS NULL OR tenant = %s GROUP BY tenant, context_id, context_version"
    )
    rows = db.execute(sql, (tenant, tenant))
    return {(tenant, context, version): n for tenant, context, version, n in rows}
