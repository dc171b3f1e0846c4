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
"""

from __future__ import annotations

import json
import random
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
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
        self, attempt: int, error: UpstreamError, retry_after: float | None = None
    ) -> float | None:
        """The wait before the try after `attempt` (0 for the first), or None: raise `error` now.

        This is the whole retry decision, so both clients' loops are `try, ask, sleep`."""
        if attempt >= self.max_retries or not isinstance(error, RETRYABLE):
            return None
        return self.delay_s(attempt, retry_after)


DEFAULT_RETRY = RetryPolicy()


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
    if status < 400:
        return UpstreamBadResponse(f"upstream answered {status}: {message}")
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


def transport_error(cause: BaseException, *, timed_out: bool) -> UpstreamError:
    """No HTTP answer at all. The repr names the library's class (ServerDisconnectedError,
    ConnectError), which says more than the message some of them leave empty."""
    if timed_out:
        return UpstreamTimeout("upstream did not answer in time")
    return UpstreamConnectionError(f"cannot reach upstream: {cause!r}")
