"""The one retry policy, status table and Retry-After rule, without a socket."""

from __future__ import annotations

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
    RetryPolicy,
    retry_after_s,
    status_error,
    transport_error,
    upstream_message,
)

EXACT = RetryPolicy(max_retries=2, backoff_base_s=0.5, backoff_max_s=8.0, jitter=0.0)
NOW = 1_700_000_000.0


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


def test_transport_errors_time_out_or_are_unreachable() -> None:
    refused = ConnectionRefusedError(111, "Connection refused")
    assert isinstance(transport_error(TimeoutError(), timed_out=True), UpstreamTimeout)
    error = transport_error(refused, timed_out=False)
    assert isinstance(error, UpstreamConnectionError) and "Connection refused" in str(error)
