"""The one retry rule and status table every upstream client shares: pure, no SDK, no socket.

Both clients (`sdk.OpenAIBackend` over the openai SDK, `http.Forwarder` over aiohttp)
reduce a failed try to the same facts, a transport failure or an HTTP status with its
headers and body, and hand them here, so a 503 or a refused connection means the same
thing whichever client met it:

    transport: no answer in time (connect, read, stall) -> UpstreamTimeout          (504) retried
    transport: refused, reset, DNS                       -> UpstreamConnectionError  (502) retried
    429                                                  -> UpstreamRateLimited      (429) retried
    5xx                                                  -> UpstreamServerError      (502) retried
    other 4xx                                            -> UpstreamRejected  (its own status)
    1xx-3xx (a redirect neither client follows)          -> UpstreamBadResponse      (502)

Retries back off exponentially with jitter. A Retry-After on 429 or 503 (seconds or an
HTTP date) replaces the backoff, capped at `backoff_max_s` so a hostile value cannot park
a request for an hour; the error still reports the value the upstream sent.

One deadline bounds a call, all its tries and waits together (`Budget`): each try gets
only the time left, a wait that would leave no time for another try is not waited (the
error goes out now), and once the deadline is spent no try starts. Before it, a hung
upstream got each try the whole timeout: one completion was sent 4 times and its client
waited about 4x the timeout; now it is sent once and answered 504 at the deadline.

Messages are written for the client who reads them: "cannot connect to the upstream
(connection refused)", never a library's repr ("ClientConnectorError(...)").
"""

from __future__ import annotations

import json
import math
import random
import socket
import ssl
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from email.utils import parsedate_to_datetime

from router.errors import (
    UpstreamBadResponse,
    UpstreamConnectionError,
    UpstreamError,
    UpstreamRateLimited,
    UpstreamRejected,
    UpstreamServerError,
    UpstreamTimeout,
)

RETRYABLE: tuple[type[UpstreamError], ...] = (
    UpstreamConnectionError,
    UpstreamTimeout,
    UpstreamRateLimited,
    UpstreamServerError,
)
RETRY_AFTER_STATUSES = frozenset({429, 503})  # the statuses RFC 9110 gives a Retry-After
# A retry needs time to be worth starting: less than this left after the wait, and the error
# goes out now. (A local upstream answers in a few ms; a remote one rarely in under 50.)
MIN_TRY_S = 0.05


@dataclass(frozen=True)
class RetryPolicy:
    """`max_retries` tries after the first; `jitter` is the fraction of each backoff drawn at
    random (0 makes it exact), so clients that failed together do not return together."""

    max_retries: int = 3
    backoff_base_s: float = 0.5
    backoff_max_s: float = 8.0
    jitter: float = 0.5

    def delay_s(self, attempt: int, retry_after: float | None = None) -> float:
        """Retry-After wins when the upstream sent one; the cap keeps a hostile value bounded."""
        if retry_after is not None:
            return min(max(retry_after, 0.0), self.backoff_max_s)
        ceiling = min(self.backoff_max_s, self.backoff_base_s * 2.0 ** min(attempt, 32))
        return ceiling * (1.0 - self.jitter * random.random())

    def wait_s(
        self,
        attempt: int,
        error: UpstreamError,
        retry_after: float | None = None,
        *,
        left_s: float = math.inf,
    ) -> float | None:
        """The wait before the try after `attempt` (0 for the first), or None: raise `error` now.

        This is the whole retry decision, so both clients' loops are `try, ask, sleep`.
        `left_s` is what the deadline leaves: a wait that leaves no time for a try is None."""
        if attempt >= self.max_retries or not isinstance(error, RETRYABLE):
            return None
        wait = self.delay_s(attempt, retry_after)
        return wait if wait + MIN_TRY_S <= left_s else None


DEFAULT_RETRY = RetryPolicy()


@dataclass
class Budget:
    """One call's tries against one deadline, an absolute reading of `clock`.

    Each client's loop is: `left_s()` for the next try (`timed_out()` when none is left),
    and after a failed try `wait_s(error)`: the wait, or None to raise the error."""

    policy: RetryPolicy
    deadline: float
    clock: Callable[[], float] = time.monotonic
    attempt: int = 0
    started: float = field(init=False)

    def __post_init__(self) -> None:
        self.started = self.clock()

    @property
    def total_s(self) -> float:
        """The whole time this call was given, for the message of a timeout."""
        return max(self.deadline - self.started, 0.0)

    def left_s(self) -> float:
        return max(self.deadline - self.clock(), 0.0)

    def wait_s(self, error: UpstreamError, retry_after: float | None = None) -> float | None:
        wait = self.policy.wait_s(self.attempt, error, retry_after, left_s=self.left_s())
        self.attempt += 1
        return wait

    def timed_out(self) -> UpstreamTimeout:
        return UpstreamTimeout(f"the upstream did not answer within {seconds(self.total_s)} s")


def deadline_at(timeout_s: float, now: float, client_timeout_s: float | None = None) -> float:
    """A request's one deadline: the upstream timeout, shortened by the client's own timeout
    when it sent one (an answer after the client gave up is work nobody reads)."""
    if client_timeout_s is not None:
        timeout_s = min(timeout_s, client_timeout_s)
    return now + timeout_s


def client_timeout_s(value: str | None) -> float | None:
    """A timeout header's seconds; None when absent or not a positive finite number."""
    try:
        parsed = float(value) if value else math.nan
    except ValueError:
        return None
    return parsed if 0 < parsed < math.inf else None


def seconds(value: float) -> str:
    """30.0 -> "30", 0.3 -> "0.3", 29.999 -> "30": how a person writes a timeout."""
    return f"{value:.2f}".rstrip("0").rstrip(".")


def retry_after_s(
    status: int, headers: Mapping[str, str], *, now: Callable[[], float] = time.time
) -> float | None:
    """Seconds a 429 or 503 asked us to wait, from a number or an HTTP date; None otherwise.

    Uncapped, so the error can report what was asked: `RetryPolicy.delay_s` caps the wait.
    `headers` should look names up case-insensitively, as httpx's and aiohttp's do."""
    if status not in RETRY_AFTER_STATUSES:
        return None
    value = headers.get("Retry-After") or ""
    try:
        return max(float(value), 0.0)
    except ValueError:
        pass
    try:
        return max(parsedate_to_datetime(value).timestamp() - now(), 0.0)
    except (TypeError, ValueError):  # absent or unreadable: back off on our own schedule
        return None


def status_error(status: int, content: bytes, retry_after: float | None = None) -> UpstreamError:
    """The status table above, for an answer that is not a 2xx; `content` is its raw body."""
    message = upstream_message(status, content)
    if status < 400:  # a redirect: the message names the status already unless the body had words
        prefix = "" if message.startswith("upstream answered") else f"upstream answered {status}: "
        return UpstreamBadResponse(prefix + message)
    if status == 429:
        return UpstreamRateLimited(message, retry_after=retry_after)
    if status >= 500:
        return UpstreamServerError(message, upstream_status=status)
    return UpstreamRejected(message, upstream_status=status)


def upstream_message(status: int, content: bytes) -> str:
    """The upstream's own words from an OpenAI-style error body, else the start of the body:
    the client sees why vLLM or OpenAI refused, not that some library raised."""
    try:
        error = json.loads(content).get("error")
    except (ValueError, AttributeError):  # not JSON (ValueError covers bad UTF-8), not an object
        error = None
    if isinstance(error, dict) and isinstance(error.get("message"), str):
        return error["message"]
    if isinstance(error, str):
        return error
    text = content.decode("utf-8", "replace").strip()[:500]
    return f"upstream answered {status}: {text or 'no body'}"


# The OS errors a connection meets, most specific first (gaierror and SSLError are OSErrors).
_CONNECTION_FAILURES: tuple[tuple[type[BaseException], str], ...] = (
    (ConnectionRefusedError, "cannot connect to the upstream (connection refused)"),
    (socket.gaierror, "cannot connect to the upstream (host name not found)"),
    (ssl.SSLError, "cannot connect to the upstream (TLS handshake failed)"),
    (ConnectionResetError, "the upstream reset the connection"),
    (ConnectionAbortedError, "the connection to the upstream was aborted"),
    (BrokenPipeError, "the upstream closed the connection"),
)


def transport_error(
    cause: BaseException, *, timed_out: bool, within_s: float | None = None
) -> UpstreamError:
    """No HTTP answer at all: a timeout (after `within_s`), or a connection that failed,
    named by the OS error at the root of the library's exception."""
    if timed_out:
        within = f" within {seconds(within_s)} s" if within_s is not None else " in time"
        return UpstreamTimeout(f"the upstream did not answer{within}")
    return UpstreamConnectionError(connection_failure(cause))


def connection_failure(cause: BaseException) -> str:
    """A sentence for a failed connection: the libraries wrap the OS error (aiohttp's
    ClientConnectorError, httpx's ConnectError), so it is looked for along the chain."""
    for error in _chain(cause):
        for kind, message in _CONNECTION_FAILURES:
            if isinstance(error, kind):
                return message
    for error in _chain(cause):
        if isinstance(error, OSError) and error.strerror:
            return f"cannot connect to the upstream ({error.strerror.lower()})"
    said = next((str(e) for e in _chain(cause) if str(e)), "")
    return f"the connection to the upstream failed ({said})" if said else _FAILED


_FAILED = "the connection to the upstream failed"


def _chain(error: BaseException | None) -> list[BaseException]:
    seen: list[BaseException] = []
    while error is not None and all(error is not e for e in seen) and len(seen) < 16:
        seen.append(error)
        error = error.__cause__ or error.__context__
    return seen
