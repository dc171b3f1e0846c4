"""The SQLite store's schema and its in-place upgrades, version by version.

A fresh file gets `SCHEMA` (with `sqlite_keys.SCHEMA`) at `SCHEMA_VERSION`; an older one
runs `UPGRADES[n]` to go from version n to n + 1, keeping its data.
"""

from __future__ import annotations

from router.store import sqlite_keys

SCHEMA_VERSION = 6
SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS requests (
    tenant TEXT NOT NULL, request_id TEXT NOT NULL, time REAL NOT NULL, route TEXT NOT NULL,
    status INTEGER NOT NULL, context_id TEXT, context_version INTEGER, rung TEXT, model TEXT,
    prompt_tokens INTEGER NOT NULL, completion_tokens INTEGER NOT NULL,
    cached_tokens INTEGER NOT NULL, latency_ms REAL NOT NULL, cost REAL NOT NULL, error_code TEXT,
    cost_usd REAL NOT NULL DEFAULT 0, PRIMARY KEY (tenant, request_id));
CREATE TABLE IF NOT EXISTS contexts (
    tenant TEXT NOT NULL, context_id TEXT NOT NULL, version INTEGER NOT NULL, text TEXT NOT NULL,
    source TEXT NOT NULL, seen INTEGER NOT NULL, sleep_status TEXT, learned TEXT,
    anticipated TEXT, sleep_tokens INTEGER NOT NULL DEFAULT 0, error TEXT, updated REAL NOT NULL,
    expected_queries REAL, truncated_passes INTEGER NOT NULL DEFAULT 0, answer_format TEXT,
    PRIMARY KEY (tenant, context_id));
CREATE TABLE IF NOT EXISTS sleep_jobs (
    job_id INTEGER PRIMARY KEY AUTOINCREMENT, tenant TEXT NOT NULL, context_id TEXT NOT NULL,
    version INTEGER NOT NULL, status TEXT NOT NULL, attempts INTEGER NOT NULL DEFAULT 0,
    error TEXT, created REAL NOT NULL, updated REAL NOT NULL,
    UNIQUE (tenant, context_id, version));
CREATE INDEX IF NOT EXISTS sleep_jobs_status ON sleep_jobs (status, job_id);
CREATE TABLE IF NOT EXISTS feedback (
    tenant TEXT NOT NULL, request_id TEXT NOT NULL, correct INTEGER NOT NULL, time REAL NOT NULL,
    PRIMARY KEY (tenant, request_id));
"""
# Version n -> n + 1, in place: an older file keeps its data and gains the new column.
UPGRADES = {
    1: "ALTER TABLE contexts ADD COLUMN expected_queries REAL",
    2: "ALTER TABLE contexts ADD COLUMN truncated_passes INTEGER NOT NULL DEFAULT 0",
    3: "ALTER TABLE requests ADD COLUMN cost_usd REAL NOT NULL DEFAULT 0",  # keys: new tables
    4: "ALTER TABLE contexts ADD COLUMN answer_format TEXT",
    5: sqlite_keys.SEED_SPEND,  # tenant_spend and usage: new tables
}
