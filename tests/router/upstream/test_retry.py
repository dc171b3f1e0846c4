"""The one retry policy, status table and Retry-After rule, without a socket."""

from __future__ import annotations

import socket
import ssl
from email.utils import formatdate

import pytest

from router.errors import (
    UpstreamBadResponse,
    UpstreamConnectionError,
    UpstreamError,
    UpstreamRateLimited,
    UpstreamRejected,
    UpstreamServerError,
    UpstreamTimeout,
)
from router.upstream.retry import (
    MIN_TRY_S,
    Budget,
    RetryPolicy,
    client_timeout_s,
    connection_failure,
    deadline_at,
    retry_after_s,
    seconds,
    status_error,
    transport_error,
    upstream_message,
)

EXACT = RetryPolicy(max_retries=2, backoff_base_s=0.5, backoff_max_s=8.0, jitter=0.0)
NOW = 1_700_000_000.0


class FakeClock:
    def __init__(self, now: float = 0.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def test_backoff_jitter_stays_within_its_band() -> None:
    policy = RetryPolicy(backoff_base_s=1.0, backoff_max_s=4.0, jitter=0.5)
    for attempt, ceiling in [(0, 1.0), (1, 2.0), (2, 4.0), (10, 4.0), (10_000, 4.0)]:
        delays = [policy.delay_s(attempt) for _ in range(50)]
        assert all(ceiling / 2 <= d <= ceiling for d in delays)
    assert policy.delay_s(0, retry_after=-3) == 0.0


def test_retry_after_replaces_the_backoff_up_to_the_cap() -> None:
    assert [EXACT.delay_s(0, 2.0), EXACT.delay_s(5, 2.0), EXACT.delay_s(0, 3600.0)] == [
        2.0,
        2.0,
        8.0,
    ]


@pytest.mark.parametrize(
    "error",
    [
        UpstreamTimeout("t"),
        UpstreamConnectionError("c"),
        UpstreamRateLimited("r"),
        UpstreamServerError("s"),
    ],
)
def test_transient_errors_wait_until_the_policy_runs_out(error: UpstreamError) -> None:
    assert [EXACT.wait_s(attempt, error) for attempt in range(3)] == [0.5, 1.0, None]


@pytest.mark.parametrize(
    "error", [UpstreamRejected("r", upstream_status=400), UpstreamBadResponse("b")]
)
def test_errors_of_the_request_or_the_body_are_raised_at_once(error: UpstreamError) -> None:
    assert EXACT.wait_s(0, error) is None


@pytest.mark.parametrize(
    ("status", "value", "expected"),
    [
        (429, "2", 2.0),
        (503, "1.5", 1.5),
        (429, "-4", 0.0),
        (429, formatdate(NOW + 30, usegmt=True), 30.0),
        (503, formatdate(NOW - 30, usegmt=True), 0.0),
        (429, "soon", None),
        (429, "", None),
        (500, "2", None),
        (400, "2", None),
    ],
    ids=["seconds", "fraction", "negative", "date", "past", "garbage", "empty", "500", "400"],
)
def test_retry_after_reads_seconds_or_a_date_on_429_and_503_only(
    status: int, value: str, expected: float | None
) -> None:
    assert retry_after_s(status, {"Retry-After": value}, now=lambda: NOW) == expected


def test_retry_after_is_uncapped_so_the_error_reports_what_was_asked() -> None:
    assert retry_after_s(429, {"Retry-After": "3600"}) == 3600.0
    assert retry_after_s(429, {}) is None


@pytest.mark.parametrize(
    ("status", "kind", "http_status"),
    [
        (301, UpstreamBadResponse, 502),
        (400, UpstreamRejected, 400),
        (401, UpstreamRejected, 401),
        (404, UpstreamRejected, 404),
        (422, UpstreamRejected, 422),
        (429, UpstreamRateLimited, 429),
        (500, UpstreamServerError, 502),
        (502, UpstreamServerError, 502),
        (503, UpstreamServerError, 502),
    ],
)
def test_status_table(status: int, kind: type[UpstreamError], http_status: int) -> None:
    error = status_error(status, b'{"error": {"message": "why"}}')
    assert type(error) is kind and error.status == http_status
    assert error.upstream_status == (None if status < 400 else status)


def test_rate_limited_carries_its_retry_after() -> None:
    error = status_error(429, b"", retry_after=30.0)
    assert isinstance(error, UpstreamRateLimited) and error.retry_after == 30.0


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b'{"error": {"message": "bad stop", "type": "x"}}', "bad stop"),
        (b'{"error": "plain words"}', "plain words"),
        (b"<html>Bad Gateway</html>", "upstream answered 502: <html>Bad Gateway</html>"),
        (b'{"detail": "x"}', 'upstream answered 502: {"detail": "x"}'),
        (b"", "upstream answered 502: no body"),
        (b"\xff\xfe", "upstream answered 502: \ufffd\ufffd"),
    ],
    ids=["openai", "error-str", "html", "other-json", "empty", "binary"],
)
def test_message_is_the_upstreams_own_words(content: bytes, message: str) -> None:
    assert upstream_message(502, content) == message


def test_message_keeps_500_characters_of_a_body() -> None:
    assert upstream_message(500, b"x" * 2000) == "upstream answered 500: " + "x" * 500


# messages: what a client reads, never a library's repr


def test_transport_errors_time_out_or_are_unreachable() -> None:
    refused = ConnectionRefusedError(111, "Connection refused")
    timeout = transport_error(TimeoutError(), timed_out=True, within_s=30.0)
    assert isinstance(timeout, UpstreamTimeout)
    assert str(timeout) == "the upstream did not answer within 30 s"
    error = transport_error(refused, timed_out=False)
    assert isinstance(error, UpstreamConnectionError)
    assert str(error) == "cannot connect to the upstream (connection refused)"


class LibraryError(Exception):
    """Stands for aiohttp's ClientConnectorError or httpx's ConnectError: a wrapper."""


def wrapped(cause: BaseException) -> LibraryError:
    try:
        raise LibraryError(f"Cannot connect to host 10.0.0.1:80 ssl:default [{cause}]") from cause
    except LibraryError as exc:
        return exc


@pytest.mark.parametrize(
    ("cause", "message"),
    [
        (ConnectionRefusedError(111, "Connect call failed"), "(connection refused)"),
        (socket.gaierror(-2, "Name or service not known"), "(host name not found)"),
        (ssl.SSLError(1, "bad handshake"), "(TLS handshake failed)"),
        (ConnectionResetError(104, "Connection reset by peer"), "the upstream reset"),
        (OSError(113, "No route to host"), "(no route to host)"),
        (LibraryError("Server disconnected"), "failed (Server disconnected)"),
        (LibraryError(), "the connection to the upstream failed"),
    ],
    ids=["refused", "dns", "tls", "reset", "no-route", "said", "silent"],
)
def test_connection_failures_are_named_from_the_os_error_underneath(
    cause: BaseException, message: str
) -> None:
    """The library's wrapper (its repr, its class name) never reaches the message."""
    text = connection_failure(wrapped(cause) if isinstance(cause, OSError) else cause)
    assert message in text and "Error(" not in text and "<" not in text


@pytest.mark.parametrize(
    ("error", "kind", "message"),
    [
        (
            transport_error(TimeoutError(), timed_out=True, within_s=0.3),
            UpstreamTimeout,
            "the upstream did not answer within 0.3 s",
        ),
        (
            transport_error(wrapped(ConnectionRefusedError(111, "x")), timed_out=False),
            UpstreamConnectionError,
            "cannot connect to the upstream (connection refused)",
        ),
        (status_error(429, b'{"error": {"message": "quota"}}'), UpstreamRateLimited, "quota"),
        (
            status_error(503, b"<html>busy</html>"),
            UpstreamServerError,
            "upstream answered 503: <html>busy</html>",
        ),
        (status_error(400, b'{"error": {"message": "bad stop"}}'), UpstreamRejected, "bad stop"),
        (status_error(302, b""), UpstreamBadResponse, "upstream answered 302: no body"),
        (
            Budget(EXACT, 30.0, FakeClock()).timed_out(),
            UpstreamTimeout,
            "the upstream did not answer within 30 s",
        ),
    ],
    ids=["timeout", "refused", "429", "5xx", "4xx", "redirect", "deadline"],
)
def test_message_of_each_kind(
    error: UpstreamError, kind: type[UpstreamError], message: str
) -> None:
    assert type(error) is kind and str(error) == message


# one deadline per call, on a fake clock


def test_each_try_gets_only_the_time_left() -> None:
    clock = FakeClock(100.0)
    budget = Budget(EXACT, deadline=110.0, clock=clock)
    assert (budget.total_s, budget.left_s()) == (10.0, 10.0)
    clock.now = 107.5
    assert budget.left_s() == 2.5
    clock.now = 120.0
    assert budget.left_s() == 0.0


def test_waits_that_fit_are_waited_then_none() -> None:
    """EXACT waits 0.5 then 1.0 s: with 2 s left the first fits; after 1.2 s, the next not."""
    clock = FakeClock()
    budget = Budget(EXACT, deadline=2.0, clock=clock)
    assert budget.wait_s(UpstreamServerError("s")) == 0.5
    clock.now = 1.2
    assert budget.wait_s(UpstreamServerError("s")) is None


def test_a_wait_must_leave_time_for_a_try() -> None:
    left = 0.5 + MIN_TRY_S
    assert EXACT.wait_s(0, UpstreamTimeout("t"), left_s=left) == 0.5
    assert EXACT.wait_s(0, UpstreamTimeout("t"), left_s=left - 0.01) is None


def test_a_read_timeout_that_spent_the_deadline_is_not_retried() -> None:
    clock = FakeClock()
    budget = Budget(EXACT, deadline=30.0, clock=clock)
    clock.now = 30.0  # the try ran until the deadline and timed out
    assert budget.wait_s(UpstreamTimeout("t")) is None


def test_retry_after_beyond_the_deadline_is_not_waited() -> None:
    budget = Budget(EXACT, deadline=1.0, clock=FakeClock())
    assert budget.wait_s(UpstreamRateLimited("r", retry_after=2.0), 2.0) is None


@pytest.mark.parametrize(
    ("client", "expected"), [(None, 130.0), (5.0, 105.0), (600.0, 130.0)], ids=str
)
def test_the_client_timeout_only_shortens_the_deadline(
    client: float | None, expected: float
) -> None:
    assert deadline_at(30.0, 100.0, client) == expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("12.5", 12.5),
        ("600", 600.0),
        (None, None),
        ("", None),
        ("0", None),
        ("-3", None),
        ("nan", None),
        ("inf", None),
        ("soon", None),
    ],
)
def test_client_timeout_header_is_a_positive_number(
    value: str | None, expected: float | None
) -> None:
    assert client_timeout_s(value) == expected


@pytest.mark.parametrize(
    ("value", "text"), [(30.0, "30"), (0.3, "0.3"), (29.999, "30"), (120.0, "120"), (0.05, "0.05")]
)
def test_seconds_read_as_a_person_writes_them(value: float, text: str) -> None:
    assert seconds(value) == text
