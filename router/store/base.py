"""What the proxy keeps, and the interface every store implements.

Everything is keyed by the tenant hash first: a store method never takes a
context id or request id without the tenant that owns it, so one tenant's
contexts, learned contexts and records cannot be read through another's.

Sleep-time jobs form a persisted queue. A job is unique per (tenant, context
id, version), so a version is never processed twice; `claim_job` moves one job
from "queued" to "running", and `requeue_running` (called once at start) puts
back the jobs a dead process left "running". Registering a new version of a
context supersedes its older queued jobs and clears its learned context.

SQLite (`router.store.sqlite`, the embedded default) and PostgreSQL
(`router.store.postgres`, shared by replicas) implement it and pass the same contract
tests (`tests/router/test_store.py`).

`StoreReader` is apart from `Store`: its questions scan tables, so they serve offline
work and periodic reports from their own connection, never a request.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
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
    cost_usd: float = 0.0  # from the model's price; 0 for an unpriced model


@dataclass(frozen=True)
class ApiKey:
    """A client key as the store keeps it: never the key, only its SHA-256.

    The key is 256 random bits, so a plain hash cannot be reversed by guessing; a leaked
    store gives away names, limits and spend, never a usable key. `rpm`/`tpm` 0 mean the
    settings' defaults; `budget_usd` None means no budget."""

    key_id: str
    name: str
    key_hash: str
    prefix: str  # what lists show: the first characters and an ellipsis
    created: float
    revoked_at: float | None = None
    rpm: int = 0
    tpm: int = 0
    budget_usd: float | None = None

    @property
    def tenant(self) -> str:
        return "k-" + self.key_id

    @property
    def live(self) -> bool:
        return self.revoked_at is None


class KeyExists(StoreError):
    """A live key already has that name."""


class KeyStore(Protocol):
    """Client keys and what each tenant spent, in dollars (requests and sleep-time work)."""

    def create_key(self, key: ApiKey) -> ApiKey:
        """KeyExists when a live key has the same name."""
        ...

    def list_keys(self) -> list[ApiKey]:
        """Live and revoked, oldest first."""
        ...

    def revoke_key(self, name: str) -> ApiKey | None:
        """The revoked key; None when no live key has that name."""
        ...

    def key_by_hash(self, key_hash: str) -> ApiKey | None:
        """Revoked keys too: the caller tells "revoked" from "unknown"."""
        ...

    def add_sleep_spend(self, tenant: str, usd: float) -> None: ...

    def spend_by_tenant(self) -> dict[str, float]:
        """Dollars per tenant since the start: its requests' cost_usd plus its sleep spend.
        Read from an aggregate kept as records and charges are written: no table scan."""
        ...

    def add_usage(self, deltas: Sequence[UsageDelta], now: float) -> dict[str, UsageTotals]:
        """Adds each delta to its tenant's bucket of `now`, in one transaction, and returns
        every named tenant's totals over the window ending at `now` (a zero delta only reads).
        Replicas call it to share per-key limits (`router.proxy.usage_sync`)."""
        ...

    def prune_usage(self, before: float) -> int:
        """Drops the buckets older than `before`; how many."""
        ...


@dataclass(frozen=True)
class UsageDelta:
    """What one replica admitted for a tenant since its last push."""

    tenant: str
    requests: int = 0
    tokens: int = 0


@dataclass(frozen=True)
class UsageTotals:
    """A tenant's use across every replica: requests and tokens in the last `USAGE_WINDOW_S`
    seconds (`oldest`: the start of its oldest counted bucket, None when none) and its
    dollars since the start."""

    requests: int = 0
    tokens: int = 0
    usd: float = 0.0
    oldest: float | None = None


USAGE_WINDOW_S = 60  # the rate limits' minute; buckets are whole seconds of the wall clock


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
    # Queries the client expects this context to serve, given at registration: the policy's
    # sleep rule weighs sleep-time work against it before the queries have arrived.
    expected_queries: float | None = None
    # Sleep passes of `learned` cut off by their token budget: an estimator feature, so the
    # proxy scores a context as collect's tables did when the estimators were fit.
    truncated_passes: int = 0
    # How answers for this context are checked and shaped, given at registration (None: free).
    answer_format: str | None = None

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
class LearnedRecord:
    """The outcome of a sleep-time job, as stored on its context."""

    text: str
    anticipated: list[dict[str, Any]]
    sleep_tokens: int
    truncated_passes: int = 0


class Store(KeyStore, Protocol):
    """Thread-safe: the proxy reads on its event loop and writes from a background thread."""

    def add_records(self, records: Sequence[RequestRecord]) -> None: ...

    def get_record(self, tenant: str, request_id: str) -> RequestRecord | None: ...

    def sight_context(
        self, tenant: str, context_id: str, text: str, source: Source, times: int = 1
    ) -> ContextRecord:
        """Count `times` more sightings; the first one creates the context (version 1)."""
        ...

    def register_context(
        self,
        tenant: str,
        context_id: str,
        text: str,
        expected_queries: float | None = None,
        answer_format: str | None = None,
    ) -> ContextRecord:
        """Create, or re-register: new text makes a new version and drops what was learned;
        a given `expected_queries` or `answer_format` replaces the stored one, None keeps it
        (neither makes a new version)."""
        ...

    def get_context(self, tenant: str, context_id: str) -> ContextRecord | None: ...

    def queue_sleep(self, tenant: str, context_id: str, version: int) -> bool:
        """False when that version already has a job, whatever its state."""
        ...

    def claim_job(self) -> SleepJob | None: ...

    def renew_lease(self, job: SleepJob) -> bool:
        """The claim is still `job`'s (its lease extended); False: the job was taken back."""
        ...

    def finish_job(self, job: SleepJob, learned: LearnedRecord) -> None: ...

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


@dataclass(frozen=True)
class Mark:
    """How far the store had got: its newest request and feedback rows, and the time.

    Report windows run from one mark to the next rather than over request times, so a
    record counts in the window in which it reached the store: one that the background
    writer or the journal delivered late is neither missed nor counted twice."""

    requests: int
    feedback: int
    time: float


@dataclass(frozen=True)
class Aggregates:
    """What the proxy did between two marks. Tenants appear only as a count.

    Latency percentiles cover answered requests (status below 400): a refusal in a
    millisecond says nothing about how long answers take. Sleep-time jobs count when they
    ended (done or failed) within the marks' times."""

    requests: int = 0
    tenants: int = 0
    by_route: Mapping[str, int] = field(default_factory=dict)
    by_status: Mapping[str, int] = field(default_factory=dict)  # "2xx", "4xx", "5xx"
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cached_tokens: int = 0
    cost: float = 0.0
    spend_usd: float = 0.0  # requests' dollars
    sleep_spend_usd: float = 0.0  # sleep-time work's dollars, charged within the marks' times
    latency_p50_ms: float | None = None
    latency_p95_ms: float | None = None
    feedback_by_route: Mapping[str, tuple[int, int]] = field(default_factory=dict)  # (n, correct)
    sleep_done: int = 0
    sleep_failed: int = 0
    sleep_tokens: int = 0

    def plus(self, later: Aggregates) -> Aggregates:
        """The sums over two adjacent spans, so a running total costs one window per tick.
        Tenant counts and latency percentiles do not add up: the sum has neither."""
        return Aggregates(
            requests=self.requests + later.requests,
            by_route=_added(self.by_route, later.by_route),
            by_status=_added(self.by_status, later.by_status),
            prompt_tokens=self.prompt_tokens + later.prompt_tokens,
            completion_tokens=self.completion_tokens + later.completion_tokens,
            cached_tokens=self.cached_tokens + later.cached_tokens,
            cost=self.cost + later.cost,
            spend_usd=self.spend_usd + later.spend_usd,
            sleep_spend_usd=self.sleep_spend_usd + later.sleep_spend_usd,
            feedback_by_route=_added_pairs(self.feedback_by_route, later.feedback_by_route),
            sleep_done=self.sleep_done + later.sleep_done,
            sleep_failed=self.sleep_failed + later.sleep_failed,
            sleep_tokens=self.sleep_tokens + later.sleep_tokens,
        )

    @property
    def errors(self) -> int:
        """Every response that was not an answer: 4xx (499: the client left) and 5xx."""
        return sum(n for status, n in self.by_status.items() if status[0] not in "123")

    @property
    def error_rate(self) -> float | None:
        return self.errors / self.requests if self.requests else None

    @property
    def feedback(self) -> int:
        return sum(n for n, _ in self.feedback_by_route.values())

    @property
    def feedback_correct(self) -> int:
        return sum(correct for _, correct in self.feedback_by_route.values())

    @property
    def accuracy(self) -> float | None:
        return self.feedback_correct / self.feedback if self.feedback else None


def _added(a: Mapping[str, int], b: Mapping[str, int]) -> dict[str, int]:
    return {key: a.get(key, 0) + b.get(key, 0) for key in {**a, **b}}


def _added_pairs(
    a: Mapping[str, tuple[int, int]], b: Mapping[str, tuple[int, int]]
) -> dict[str, tuple[int, int]]:
    zero = (0, 0)
    return {
        key: (a.get(key, zero)[0] + b.get(key, zero)[0], a.get(key, zero)[1] + b.get(key, zero)[1])
        for key in {**a, **b}
    }


class StoreReader(Protocol):
    """Read-only questions that scan tables: for reports and exports, not for requests."""

    def mark(self, at: float | None = None) -> Mark:
        """The store's position now; `at` is the time it carries (default: the clock)."""
        ...

    def aggregates(self, start: Mark, end: Mark) -> Aggregates:
        """Rows that reached the store after `start`, up to and including `end`."""
        ...

    def labeled_requests(self, tenant: str | None = None) -> list[tuple[RequestRecord, bool]]:
        """Every request that has a feedback label, with it, oldest first."""
        ...

    def request_counts(
        self, tenant: str | None = None
    ) -> dict[tuple[str, str | None, int | None], int]:
        """Requests per (tenant, context id, context version); None for no context."""
        ...

    def get_context(self, tenant: str, context_id: str) -> ContextRecord | None: ...

    def close(self) -> None: ...
