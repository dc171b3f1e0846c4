"""The proxy's state: request records, contexts, sleep-time jobs, feedback (see `base`).

A store is opened from a URL, the one place that knows which engines exist:
`sqlite:///PATH` (or a bare path) is the embedded default; `postgresql://...` is the
store several replicas share (`router.store.postgres`). Another engine is one module
that passes `StoreContract` plus one line in `open_store`.
"""

from __future__ import annotations

from pathlib import Path

from router.settings import Settings
from router.store.base import (
    ContextRecord,
    LearnedRecord,
    RequestRecord,
    SleepJob,
    Store,
    StoreError,
)
from router.store.sqlite import SqliteStore
from router.store.writer import BackgroundWriter

SQLITE = "sqlite:///"


def open_store(url: str | Path, *, lease_s: float | None = None) -> Store:
    """`sqlite:///relative/or//absolute/path`, as SQLAlchemy and MLflow spell it, or a path;
    or `postgresql://user:password@host:port/database` (libpq's URL, `postgres://` too).
    `lease_s`: how long a shared store's job claim lasts (one process's SQLite needs none)."""
    text = str(url)
    if text.startswith(("postgresql://", "postgres://")):  # psycopg only for those who use it
        try:
            from router.store.postgres import PostgresStore
        except ImportError as exc:
            raise StoreError(
                f"a postgresql:// store needs psycopg: pip install 'sleeptime[postgres]' ({exc})"
            ) from exc
        return PostgresStore(text) if lease_s is None else PostgresStore(text, lease_s=lease_s)
    path = sqlite_path(text)
    if path is None:
        scheme = text.split("://", 1)[0]
        raise StoreError(f"no store for {scheme}:// URLs; known: sqlite:///PATH, postgresql://")
    return SqliteStore(path)


def sqlite_path(url: str) -> Path | None:
    """The file behind a SQLite store URL (its journal and permissions go beside it)."""
    return Path(url.removeprefix(SQLITE)) if url.startswith(SQLITE) or "://" not in url else None


def store_url_of(settings: Settings) -> str:
    """The settings' store: `store_url`, else the SQLite file at db_path or in the cache."""
    if settings.store_url:
        return settings.store_url
    return SQLITE + str(settings.db_path or settings.cache_dir / "sleeptime.sqlite")


__all__ = [
    "BackgroundWriter",
    "ContextRecord",
    "LearnedRecord",
    "RequestRecord",
    "SleepJob",
    "SqliteStore",
    "Store",
    "StoreError",
    "open_store",
    "sqlite_path",
    "store_url_of",
]
