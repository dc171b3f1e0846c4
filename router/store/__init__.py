"""The proxy's state: request records, contexts, sleep-time jobs, feedback (see `base`)."""

from __future__ import annotations

from router.store.base import (
    ContextRecord,
    Learned,
    RequestRecord,
    SleepJob,
    Store,
    StoreError,
)
from router.store.sqlite import SqliteStore
from router.store.writer import BackgroundWriter

__all__ = [
    "BackgroundWriter",
    "ContextRecord",
    "Learned",
    "RequestRecord",
    "SleepJob",
    "SqliteStore",
    "Store",
    "StoreError",
]
