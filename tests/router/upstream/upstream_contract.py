"""The behaviour every upstream client owes the proxy, whatever library it sits on.

A backend passes when a subclass of `UpstreamContract` supplies one fixture,
`open_upstream`: a function that wraps the backend, pointed at a URL with a retry
policy and a timeout, into the small synchronous `Upstream` interface below. The
tests then drive it against the real fake upstream (a socket on 127.0.0.1) and
count what the fake saw, so retries are measured on the wire, not in a mock.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Callable, Iterator
from email.utils import formatdate
from typing import Any, Protocol

import pytest
from fake_upstream import (
    FakeUpstream,
    completion,
    completion_body,
    error_reply,
    json_reply,
    raw_reply,
    stream_reply,
    usage_body,
)

from router.errors import (
    UpstreamBadResponse,
    UpstreamConnectionError,
    UpstreamRateLimited,
    UpstreamRejected,
    UpstreamServerError,
    UpstreamTimeout,
)
from router.upstream import RetryPolicy

EXACT = RetryPolicy(max_retries=3, backoff_base_s=0.5, backoff_max_s=8.0, jitter=0.0)
BACKOFF = [0.5, 1.0, 2.0]  # EXACT's waits after tries 1, 2 and 3
LONG_S = 10.0  # a timeout no test here reaches (its waits are recorded, not slept)
BODY: dict[str, Any] = {"model": "m", "messages": [{"role": "user", "content": "2+2?"}]}


class Upstream(Protocol):
    """One backend behind four calls; each raises `router.errors.UpstreamError` on failure."""

    waits: list[float]  # the backoff waits the backend asked for, in order

    def complete(
        self, body: dict[str, Any], *, deadline: float | None = None
    ) -> tuple[int, dict[str, Any]]:
        """(status, an OpenAI chat.completion: choices[0].message.content and usage);
        `deadline`, a `time.monotonic()` reading, goes to the backend as it is."""
        ...

    def stream_text(self, body: dict[str, Any], *, deadline: float | None = None) -> list[str]:
        """The non-empty content deltas of choice 0, read to the end of the stream."""
        ...

    def models(self) -> list[str]: ...

    def close(self) -> None: ...


OpenUpstream = Callable[..., Upstream]  # (url, *, retry: RetryPolicy, timeout_s: float)


class UpstreamContract:
    @pytest.fixture
    def open_upstream(self) -> OpenUpstream:
        raise NotImplementedError("a backend's test class supplies this fixture")

    @pytest.fixture
    def upstream(self, open_upstream: OpenUpstream, fake: FakeUpstream) -> Iterator[Upstream]:
        """Waits are recorded, not slept: the timeout (the deadline) leaves room for them all."""
        backend = open_upstream(fake.url, retry=EXACT, timeout_s=LONG_S)
        yield backend
        backend.close()

    # answers

    def test_200_passes_through_with_usage(self, upstream: Upstream, fake: FakeUpstream) -> None:
        fake.enqueue(completion("4", usage=usage_body(20, 1)))
        status, answer = upstream.complete(BODY)
        assert status == 200 and answer["choices"][0]["message"]["content"] == "4"
        usage = answer["usage"]
        assert (usage["prompt_tokens"], usage["completion_tokens"]) == (20, 1)
        sent = fake.requests[0]
        assert (sent.method, sent.path) == ("POST", "/v1/chat/completions")
        assert sent.json["messages"] == BODY["messages"] and upstream.waits == []

    def test_models_lists_ids(self, upstream: Upstream, fake: FakeUpstream) -> None:
        models = [{"id": i, "object": "model", "created": 0, "owned_by": "x"} for i in "ab"]
        fake.enqueue(json_reply({"object": "list", "data": models}))
        assert upstream.models() == ["a", "b"]
        assert (fake.requests[0].method, fake.requests[0].path) == ("GET", "/v1/models")

    def test_stream_relays_content(self, upstream: Upstream, fake: FakeUpstream) -> None:
        fake.enqueue(stream_reply(["The answer", " is 4."], usage=usage_body(20, 5)))
        assert upstream.stream_text(BODY) == ["The answer", " is 4."]
        assert fake.requests[0].json["stream"] is True

    # retries

    def test_retry_after_is_honoured_capped_then_succeeds(
        self, upstream: Upstream, fake: FakeUpstream
    ) -> None:
        in_an_hour = formatdate(time.time() + 3600, usegmt=True)
        fake.enqueue(
            error_reply(429, "slow down", headers={"Retry-After": "2"}),
            error_reply(503, "busy", headers={"Retry-After": in_an_hour}),
            completion("ok", usage=usage_body(1, 1)),
        )
        status, answer = upstream.complete(BODY)
        assert status == 200 and answer["choices"][0]["message"]["content"] == "ok"
        assert upstream.waits == [2.0, EXACT.backoff_max_s] and len(fake.requests) == 3

    def test_rate_limited_after_all_retries(self, upstream: Upstream, fake: FakeUpstream) -> None:
        fake.fallback = error_reply(429, "quota", headers={"Retry-After": "30"})
        with pytest.raises(UpstreamRateLimited, match="quota") as caught:
            upstream.complete(BODY)
        assert caught.value.retry_after == 30.0 and caught.value.status == 429
        assert upstream.waits == [8.0] * EXACT.max_retries
        assert len(fake.requests) == EXACT.max_retries + 1

    @pytest.mark.parametrize("status", [500, 502, 503])
    def test_5xx_retried_up_to_the_policy_then_a_server_error(
        self, upstream: Upstream, fake: FakeUpstream, status: int
    ) -> None:
        fake.fallback = error_reply(status, "boom")
        with pytest.raises(UpstreamServerError, match="boom") as caught:
            upstream.complete(BODY)
        assert (caught.value.status, caught.value.upstream_status) == (502, status)
        assert len(fake.requests) == EXACT.max_retries + 1 and upstream.waits == BACKOFF

    def test_5xx_html_page_names_itself(self, upstream: Upstream, fake: FakeUpstream) -> None:
        fake.fallback = raw_reply(b"<html>Bad Gateway</html>", 502, content_type="text/html")
        with pytest.raises(UpstreamServerError, match="upstream answered 502: <html>Bad Gateway"):
            upstream.complete(BODY)

    def test_5xx_then_success(self, upstream: Upstream, fake: FakeUpstream) -> None:
        fake.enqueue(error_reply(500, "boom"), error_reply(503, "busy"), completion("ok"))
        status, answer = upstream.complete(BODY)
        assert status == 200 and answer["choices"][0]["message"]["content"] == "ok"
        assert upstream.waits == BACKOFF[:2]

    @pytest.mark.parametrize("status", [400, 401, 404])
    def test_4xx_not_retried_keeps_status_and_message(
        self, upstream: Upstream, fake: FakeUpstream, status: int
    ) -> None:
        fake.enqueue(error_reply(status, "model 'x' does not exist"))
        with pytest.raises(UpstreamRejected) as caught:
            upstream.complete(BODY)
        assert str(caught.value) == "model 'x' does not exist"
        assert (caught.value.status, caught.value.upstream_status) == (status, status)
        assert (len(fake.requests), upstream.waits) == (1, [])

    @pytest.mark.parametrize(
        "body",
        [b"{not json", b"\xff\xfe\x00garbage", b"<html>hello</html>", b"[1, 2]"],
        ids=["json", "binary", "html", "list"],
    )
    def test_garbage_body_is_a_bad_response_not_retried(
        self, upstream: Upstream, fake: FakeUpstream, body: bytes
    ) -> None:
        fake.enqueue(raw_reply(body))
        with pytest.raises(UpstreamBadResponse) as caught:
            upstream.complete(BODY)
        assert caught.value.status == 502 and (len(fake.requests), upstream.waits) == (1, [])

    # a dead or hung upstream

    def test_connection_refused_is_retried_then_unreachable(
        self, open_upstream: OpenUpstream
    ) -> None:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = sock.getsockname()[1]
        backend = open_upstream(f"http://127.0.0.1:{port}/v1", retry=EXACT, timeout_s=LONG_S)
        try:
            with pytest.raises(UpstreamConnectionError) as caught:
                backend.complete(BODY)
            assert caught.value.status == 502
            assert str(caught.value) == "cannot connect to the upstream (connection refused)"
            with pytest.raises(UpstreamConnectionError):
                backend.stream_text(BODY)
        finally:
            backend.close()
        assert backend.waits == BACKOFF * 2

    def test_hung_upstream_is_asked_once_within_the_timeout(
        self, open_upstream: OpenUpstream, fake: FakeUpstream
    ) -> None:
        """The timeout is the call's deadline: a try that used it up leaves none to retry."""
        fake.fallback = json_reply(completion_body("late"), delay_s=3.0)
        backend = open_upstream(fake.url, retry=EXACT, timeout_s=0.3)
        started = time.monotonic()
        try:
            with pytest.raises(UpstreamTimeout) as caught:
                backend.complete(BODY)
        finally:
            backend.close()
        assert 0.25 < time.monotonic() - started < 1.0
        assert caught.value.status == 504
        assert str(caught.value) == "the upstream did not answer within 0.3 s"
        assert (len(fake.requests), backend.waits) == (1, [])

    # streams: retried only before their first event

    def test_stream_retried_before_its_first_event(
        self, upstream: Upstream, fake: FakeUpstream
    ) -> None:
        fake.enqueue(error_reply(503, "warming up"), stream_reply(["ok"], usage=usage_body(1, 1)))
        assert upstream.stream_text(BODY) == ["ok"]
        assert (len(fake.requests), upstream.waits) == (2, [0.5])

    def test_stream_rejected_before_any_event(self, upstream: Upstream, fake: FakeUpstream) -> None:
        fake.enqueue(error_reply(400, "bad stop"))
        with pytest.raises(UpstreamRejected, match="bad stop"):
            upstream.stream_text(BODY)
        assert (len(fake.requests), upstream.waits) == (1, [])

    def test_stream_cut_midway_is_a_bad_response_not_retried(
        self, upstream: Upstream, fake: FakeUpstream
    ) -> None:
        fake.enqueue(stream_reply(["a", "b"], ending="cut"))
        with pytest.raises(UpstreamBadResponse):
            upstream.stream_text(BODY)
        assert (len(fake.requests), upstream.waits) == (1, [])

    def test_stream_stall_times_out_not_retried(
        self, open_upstream: OpenUpstream, fake: FakeUpstream
    ) -> None:
        fake.enqueue(stream_reply(["a"], ending="stall", stall_s=2.0))
        backend = open_upstream(fake.url, retry=EXACT, timeout_s=0.3)
        try:
            with pytest.raises(UpstreamTimeout):
                backend.stream_text(BODY)
        finally:
            backend.close()
        assert (len(fake.requests), backend.waits) == (1, [])
