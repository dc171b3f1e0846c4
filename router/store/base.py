"""What the proxy keeps, and the interface every store implements.

Everything is keyed by the tenant hash first: a store method never takes a
context id or request id without the tenant that owns it, so one tenant's
contexts, learned contexts and records cannot be read through another's.

Sleep-time jobs form a persisted queue. A job is unique per (tenant, context
id, version), so a version is never processed twice; `claim_job` moves one job
from "queued" to "running", and `requeue_running` (called once at start) puts
back the jobs a dead process left "running". Registering a new version of a
context supersedes its older queued jobs and clears its learned context.

SQLite implements it now (`router.store.sqlite`); PostgreSQL later, by passing
the same contract tests (`tests/router/test_store.py`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal, Protocol

from router.errors import SleeptimeError

Source = Literal["explicit", "implicit"]
SleepStatus = Literal["queued", "running", "done", "failed"]
JobStatus = Literal["queued", "running", "done", "failed", "superseded"]


class StoreError(SleeptimeError):
    """The store cannot be opened, its schema is newer than this code, or it is corrupt."""


@dataclass(frozen=True)
class RequestRecord:
    """One proxied chat request: what it cost and how it was routed.

    `status` is the HTTP status, except for a stream that broke after it began (the status
    of the error event that ended it) and a client that left first (499)."""

    tenant: str
    request_id: str
    time: float
    route: str
    status: int
    context_id: str | None = None
    context_version: int | None = None
    rung: str | None = None
    model: str | None = None
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cached_tokens: int = 0
    latency_ms: float = 0.0
    cost: float = 0.0
    error_code: str | None = None


@dataclass(frozen=True)
class ContextRecord:
    """A context as the store knows it; `learned` and `anticipated` belong to `version`."""

    tenant: str
    context_id: str
    version: int
    text: str
    source: Source
    seen: int
    sleep_status: SleepStatus | None
    learned: str | None
    anticipated: list[dict[str, Any]] | None
    sleep_tokens: int
    error: str | None
    updated: float

    @property
    def has_learned(self) -> bool:
        return bool(self.learned) and self.sleep_status == "done"


@dataclass(frozen=True)
class SleepJob:
    job_id: int
    tenant: str
    context_id: str
    version: int
    status: JobStatus
    attempts: int = 0
    error: str | None = None


@dataclass(frozen=True)
class Learned:
    """The outcome of a sleep-time job, as stored on its context."""

    text: str
    anticipated: list[dict[str, Any]]
    sleep_tokens: int


class Store(Protocol):
    """Thread-safe: the proxy reads on its event loop and writes from a background thread."""

    def add_records(self, records: Sequence[RequestRecord]) -> None: ...

    def get_record(self, tenant: str, request_id: str) -> RequestRecord | None: ...

    def sight_context(
        self, tenant: str, context_id: str, text: str, source: Source, times: int = 1
    ) -> ContextRecord:
        """Count `times` more sightings; the first one creates the context (version 1)."""
        ...

    def register_context(self, tenant: str, context_id: str, text: str) -> ContextRecord:
        """Create, or re-register: new text makes a new version and drops what was learned."""
        ...

    def get_context(self, tenant: str, context_id: str) -> ContextRecord | None: ...

    def queue_sleep(self, tenant: str, context_id: str, version: int) -> bool:
        """False when that version already has a job, whatever its state."""
        ...

    def claim_job(self) -> SleepJob | None: ...

    def finish_job(self, job: SleepJob, learned: Learned) -> None: ...

    def fail_job(self, job: SleepJob, reason: str) -> None: ...

    def requeue_running(self) -> int: ...

    def job_counts(self) -> dict[str, int]: ...

    def add_feedback(self, tenant: str, request_id: str, correct: bool) -> bool:
        """False when the tenant has no such request (yet)."""
        ...

    def get_feedback(self, tenant: str, request_id: str) -> bool | None: ...

    def integrity_problems(self) -> list[str]:
        """Empty when the store is sound."""
        ...

    def close(self) -> None: ...
