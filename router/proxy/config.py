"""The proxy's configuration: `Settings` plus the knobs only tests and benchmarks turn.

Everything an operator sets (paths, limits, routing, sleep) lives in
`router.settings.Settings`, so it comes from a TOML file, a `SLEEPTIME_*`
variable or a flag alike; `ProxyConfig` reads those through properties and
adds internals (queue sizes, caches, connection pool).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from router.settings import Settings
from router.store import sqlite_path, store_url_of

SETTINGS = frozenset(f.name for f in fields(Settings))


@dataclass(frozen=True)
class ProxyConfig:
    settings: Settings = field(default_factory=Settings)
    sleep_max_tokens: int = 768
    stream_usage: bool = True  # ask upstreams for stream usage; stripped if the client did not
    record_queue: int = 10_000
    context_cache_s: float = 1.0  # how stale a context record the router may see
    max_connections: int = 512

    @classmethod
    def from_settings(cls, settings: Settings, **overrides: Any) -> ProxyConfig:
        """CLI flags arrive as keyword arguments (None: not given); settings' own names go to
        the settings, the rest to this object."""
        given = {k: v for k, v in overrides.items() if v is not None}
        if isinstance(given.get("models"), tuple | list):
            given["models"] = ",".join(given["models"])
        ours = {k: v for k, v in given.items() if k not in SETTINGS}
        theirs = {k: v for k, v in given.items() if k in SETTINGS}
        return dataclasses.replace(cls(settings=settings.replace(**theirs)), **ours)

    @property
    def store_url(self) -> str:
        return store_url_of(self.settings)

    @property
    def database(self) -> Path:
        """The SQLite file of the store, or for another engine where local files go."""
        return sqlite_path(self.store_url) or self.settings.cache_dir / "sleeptime.store"

    @property
    def journal_dir(self) -> Path:
        """The record journal goes with the database it feeds (`router.store.journal`); it is
        this process's own, whichever engine the store is."""
        return self.database.with_name(self.database.name + ".journal")

    @property
    def salt_file(self) -> Path:
        return self.settings.salt_path or self.settings.cache_dir / "tenant-salt"

    @property
    def models(self) -> tuple[str, ...]:
        """Models clients may name besides "sleeptime". Empty: any, and the upstream decides;
        with the embedded model, only its own name (llama.cpp answers any name with itself)."""
        return tuple(m.strip() for m in self.settings.models.split(",") if m.strip())

    @property
    def router(self) -> str:
        return self.settings.router

    @property
    def max_body_bytes(self) -> int:
        return self.settings.max_body_bytes

    @property
    def max_context_bytes(self) -> int:
        return self.settings.max_context_bytes

    @property
    def max_inflight_per_key(self) -> int:
        return self.settings.max_inflight_per_key

    @property
    def max_inflight_for_sleep(self) -> int:
        return self.settings.max_inflight_for_sleep

    @property
    def sleep_enabled(self) -> bool:
        return self.settings.sleep_enabled

    @property
    def sleep_passes(self) -> int:
        return self.settings.sleep_passes

    @property
    def sleep_prompt(self) -> str:
        return self.settings.sleep_prompt
