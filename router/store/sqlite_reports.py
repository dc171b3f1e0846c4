"""The SQLite store's report queries: one window of requests, feedback and sleep-time work.

A window is the rows written between two `Mark`s. Rowids only grow (REPLACE too writes
a new rowid), so a window is a rowid range, read without scanning the whole table.
"""

from __future__ import annotations

import dataclasses
import sqlite3

from router.store.base import Aggregates, Mark, RequestRecord

_IN_RANGE = "FROM requests WHERE rowid > ? AND rowid <= ?"
_RECORD_COLUMNS = ", ".join(f"r.{f.name}" for f in dataclasses.fields(RequestRecord))


def window_aggregates(db: sqlite3.Connection, start: Mark, end: Mark) -> Aggregates:
    """Inside one read transaction, so every figure comes from the same state."""
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


def _request_totals(db: sqlite3.Connection, rows: tuple[int, int]) -> dict[str, int | float]:
    row = db.execute(
        "SELECT COUNT(*), COUNT(DISTINCT tenant), TOTAL(prompt_tokens), TOTAL(completion_tokens),"
        f" TOTAL(cached_tokens), TOTAL(cost), TOTAL(cost_usd) {_IN_RANGE}",
        rows,
    ).fetchone()
    names = ("requests", "tenants", "prompt_tokens", "completion_tokens", "cached_tokens")
    return {
        **{name: int(value) for name, value in zip(names, row[:5], strict=True)},
        "cost": row[5],
        "spend_usd": row[6],
    }


def _counts(db: sqlite3.Connection, expression: str, rows: tuple[int, int]) -> dict[str, int]:
    sql = f"SELECT {expression}, COUNT(*) {_IN_RANGE} GROUP BY 1 ORDER BY 1"
    return {str(key): n for key, n in db.execute(sql, rows)}


def _latencies(db: sqlite3.Connection, rows: tuple[int, int]) -> dict[str, float | None]:
    """Nearest-rank percentiles, sorted by SQLite: no list of latencies comes into Python."""
    answered = f"{_IN_RANGE} AND status < 400"
    n = db.execute(f"SELECT COUNT(*) {answered}", rows).fetchone()[0]
    nth = f"SELECT latency_ms {answered} ORDER BY latency_ms LIMIT 1 OFFSET ?"
    return {
        f"latency_p{p}_ms": db.execute(nth, (*rows, -(-p * n // 100) - 1)).fetchone()[0]
        if n
        else None
        for p in (50, 95)
    }


def _feedback(db: sqlite3.Connection, rows: tuple[int, int]) -> dict[str, tuple[int, int]]:
    sql = (
        "SELECT r.route, COUNT(*), SUM(f.correct) FROM feedback f JOIN requests r"
        " ON r.tenant = f.tenant AND r.request_id = f.request_id"
        " WHERE f.rowid > ? AND f.rowid <= ? GROUP BY r.route ORDER BY r.route"
    )
    return {route: (n, correct) for route, n, correct in db.execute(sql, rows)}


def _sleep_work(db: sqlite3.Connection, since: float, until: float) -> dict[str, int]:
    """Tokens of the version a job learned; a failed job stored none."""
    sql = (
        "SELECT j.status, COUNT(*), TOTAL(c.sleep_tokens) FROM sleep_jobs j LEFT JOIN contexts c"
        " ON j.status = 'done' AND c.tenant = j.tenant AND c.context_id = j.context_id"
        " AND c.version = j.version WHERE j.status IN ('done', 'failed')"
        " AND j.updated > ? AND j.updated <= ? GROUP BY j.status"
    )
    found = {status: (n, int(tokens)) for status, n, tokens in db.execute(sql, (since, until))}
    done, failed = found.get("done", (0, 0)), found.get("failed", (0, 0))
    return {"sleep_done": done[0], "sleep_failed": failed[0], "sleep_tokens": done[1]}


def labeled_requests(
    db: sqlite3.Connection, tenant: str | None
) -> list[tuple[RequestRecord, bool]]:
    sql = (
        f"SELECT {_RECORD_COLUMNS}, f.correct FROM requests r JOIN feedback f"
        " ON f.tenant = r.tenant AND f.request_id = r.request_id"
        " WHERE ? IS NULL OR r.tenant = ? ORDER BY r.time, r.request_id"
    )
    rows = db.execute(sql, (tenant, tenant))
    return [(RequestRecord(*row[:-1]), bool(row[-1])) for row in rows]


def request_counts(
    db: sqlite3.Connection, tenant: str | None
) -> dict[tuple[str, str | None, int | None], int]:
    sql = (
        "SELECT tenant, context_id, context_version, COUNT(*) FROM requests"
        " WHERE ? IS NULL OR tenant = ? GROUP BY tenant, context_id, context_version"
    )
    rows = db.execute(sql, (tenant, tenant))
    return {(tenant, context, version): n for tenant, context, version, n in rows}


def _sleep_spend(db: sqlite3.Connection, since: float, until: float) -> float:
    """Charged when a job ended: the window that counts the job counts its dollars."""
    sql = "SELECT TOTAL(usd) FROM sleep_spend WHERE time > ? AND time <= ?"
    return float(db.execute(sql, (since, until)).fetchone()[0])
