"""A disk cache of LLM responses keyed by the full request.

Benchmarks call the model tens of thousands of times; caching every response
under the hash of (model, messages, every parameter) makes re-runs free and a
killed run resume where it stopped. SQLite in WAL mode: each response is one
committed row, so a kill loses at most the request in flight.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
import threading
import time
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

from router.sleep import ChatBackend
from router.upstream import ChatResult, Usage

SCHEMA = """
CREATE TABLE IF NOT EXISTS responses (
    key TEXT PRIMARY KEY,
    request TEXT NOT NULL,
    response TEXT NOT NULL,
    created REAL NOT NULL
)
"""


def request_key(model: str, messages: list[dict], params: dict[str, Any]) -> str:
    canonical = json.dumps(
        {"model": model, "messages": messages, "params": params},
        sort_keys=True,
        ensure_ascii=False,
        separators=(",", ":"),
    )
    return hashlib.sha256(canonical.encode()).hexdigest()


class ResponseCache:
    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.execute(SCHEMA)
        self._lock = threading.Lock()

    def get(self, key: str) -> ChatResult | None:
        with self._lock:
            row = self._db.execute(
                "SELECT response FROM responses WHERE key = ?", (key,)
            ).fetchone()
        return None if row is None else _decode(row[0])

    def put(self, key: str, request: dict[str, Any], result: ChatResult) -> None:
        with self._lock:
            self._db.execute(
                "INSERT OR REPLACE INTO responses VALUES (?, ?, ?, ?)",
                (
                    key,
                    json.dumps(request, ensure_ascii=False),
                    json.dumps(asdict(result)),
                    time.time(),
                ),
            )

    def __len__(self) -> int:
        with self._lock:
            return int(self._db.execute("SELECT COUNT(*) FROM responses").fetchone()[0])

    def close(self) -> None:
        with self._lock:
            self._db.close()


def _decode(text: str) -> ChatResult:
    data = json.loads(text)
    return ChatResult(**{**data, "usage": Usage(**data["usage"])})


class CachingBackend:
    """Wraps any backend; a hit returns the stored result, latency as first measured."""

    def __init__(self, backend: ChatBackend, cache: ResponseCache) -> None:
        self._backend = backend
        self._cache = cache
        self.hits = 0
        self.misses = 0

    def chat(self, messages: list[dict], *, model: str, **params: Any) -> ChatResult:
        key = request_key(model, messages, params)
        cached = self._cache.get(key)
        if cached is not None:
            self.hits += 1
            return replace(cached)
        self.misses += 1
        result = self._backend.chat(messages, model=model, **params)
        self._cache.put(key, {"model": model, "messages": messages, "params": params}, result)
        return result
