"""The proxy's configuration: `Settings` plus what only `sleeptime serve` needs.

Kept apart from `router.settings` for now; the fields marked "-> Settings"
belong there (with their `SLEEPTIME_*` variables) once that module takes them.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from router.settings import Settings

RouterName = Literal["passthrough", "enriched"]


@dataclass(frozen=True)
class ProxyConfig:
    settings: Settings = field(default_factory=Settings)
    db_path: Path | None = None  # -> Settings; None: <cache_dir>/sleeptime.sqlite
    salt_path: Path | None = None  # -> Settings; None: <cache_dir>/tenant-salt
    max_body_bytes: int = 8 * 1024 * 1024  # -> Settings
    max_inflight_for_sleep: int = 0  # -> Settings: sleep only while at most this many in flight
    sleep_enabled: bool = True  # -> Settings
    sleep_passes: int = 1  # the policy's default sleep budget, until a policy file gives one
    sleep_max_tokens: int = 768
    router: RouterName = "passthrough"  # -> Settings (later: the policy file)
    stream_usage: bool = True  # ask upstreams for stream usage; stripped if the client did not
    record_queue: int = 10_000
    context_cache_s: float = 1.0  # how stale a context record the router may see
    max_connections: int = 512
    # Models clients may name besides "sleeptime". Empty: any, and the upstream decides; with
    # the embedded model, only its own name (llama.cpp would answer any name with itself).
    models: tuple[str, ...] = ()
    max_context_bytes: int = 256 * 1024  # larger contexts pass through, never stored or slept on
    max_inflight_per_key: int = 64  # one key's concurrent requests; beyond it, 429 + Retry-After

    @classmethod
    def from_settings(cls, settings: Settings, **overrides: Any) -> ProxyConfig:
        """CLI flags arrive as keyword arguments; None means "not given"."""
        given = {k: v for k, v in overrides.items() if v is not None}
        return dataclasses.replace(cls(settings=settings), **given)

    @property
    def database(self) -> Path:
        return self.db_path or self.settings.cache_dir / "sleeptime.sqlite"

    @property
    def journal_dir(self) -> Path:
        """The record journal goes with the database it feeds (`router.store.journal`)."""
        return self.database.with_name(self.database.name + ".journal")

    @property
    def salt_file(self) -> Path:
        return self.salt_path or self.settings.cache_dir / "tenant-salt"
