"""router.forward against a real (fake) HTTP upstream: retries, translation, streams."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import pytest
from fake_upstream import (
    FakeUpstream,
    completion,
    completion_body,
    error_reply,
    json_reply,
    raw_reply,
    sse_reply,
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
from router.forward import Forwarder
from router.upstream import RetryPolicy

T = TypeVar("T")
EXACT = RetryPolicy(max_retries=2, backoff_base_s=0.5, backoff_max_s=8.0, jitter=0.0)
BODY = b'{"model": "m", "messages": [{"role": "user", "content": "hi"}]}'


def run(
    url: str, action: Callable[[Forwarder], Awaitable[T]], **options: Any
) -> tuple[T | BaseException, list[float]]:
    """Runs one call on a fresh Forwarder; returns (result or raised error, backoff waits)."""
    waits: list[float] = []

    async def record(seconds: float) -> None:
        waits.append(seconds)

    async def main() -> T | BaseException:
        forwarder = Forwarder(url, sleep=record, **{"retry": EXACT, **options})
        try:
            return await action(forwarder)
        except Exception as exc:
            return exc
        finally:
            await forwarder.aclose()

    return asyncio.run(main()), waits


async def post(forwarder: Forwarder) -> Any:
    return await forwarder.post("/chat/completions", BODY)


async def stream_all(forwarder: Forwarder) -> list[bytes]:
    stream = await forwarder.open_stream("/chat/completions", BODY)
    try:
        return [event async for event in stream.events()]
    finally:
        await stream.aclose()


def test_post_returns_bytes_and_json(fake: FakeUpstream) -> None:
    fake.enqueue(completion("hi", usage=usage_body(3, 1)))
    answer, waits = run(fake.url, post, api_key="up-key")
    assert answer.data["usage"]["prompt_tokens"] == 3 and b'"hi"' in answer.content
    assert fake.requests[0].headers["Authorization"] == "Bearer up-key"
    assert fake.requests[0].body == BODY and waits == []


def test_refused_connection_is_retried_then_502() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    error, waits = run(f"http://127.0.0.1:{port}/v1", post)
    assert isinstance(error, UpstreamConnectionError) and error.status == 502
    assert waits == [0.5, 1.0]


def test_timeout_is_504(fake: FakeUpstream) -> None:
    fake.enqueue(json_reply(completion_body("late"), delay_s=1.0))
    error, _ = run(fake.url, post, timeout_s=0.2, retry=RetryPolicy(max_retries=0))
    assert isinstance(error, UpstreamTimeout) and error.status == 504


def test_429_waits_as_told_then_gives_up_with_retry_after(fake: FakeUpstream) -> None:
    fake.enqueue(*[error_reply(429, "slow down", headers={"Retry-After": "2"})] * 3)
    error, waits = run(fake.url, post)
    assert isinstance(error, UpstreamRateLimited) and error.retry_after == 2.0
    assert waits == [2.0, 2.0] and len(fake.requests) == 3


def test_5xx_is_retried_until_success(fake: FakeUpstream) -> None:
    fake.enqueue(error_reply(500, "boom"), error_reply(503, "busy"), completion("ok"))
    answer, waits = run(fake.url, post)
    assert answer.data["choices"][0]["message"]["content"] == "ok" and waits == [0.5, 1.0]


def test_5xx_after_all_retries_is_502(fake: FakeUpstream) -> None:
    fake.enqueue(*[error_reply(500, "boom")] * 3)
    error, _ = run(fake.url, post)
    assert isinstance(error, UpstreamServerError) and error.status == 502
    assert "boom" in str(error)


def test_4xx_keeps_status_and_message_without_retry(fake: FakeUpstream) -> None:
    fake.enqueue(error_reply(404, "model 'x' does not exist"))
    error, waits = run(fake.url, post)
    assert isinstance(error, UpstreamRejected) and error.status == 404
    assert str(error) == "model 'x' does not exist" and waits == []


@pytest.mark.parametrize("body", [b"<html>oops</html>", b'{"choices": [', b"[1, 2]", b"\xff\xfe"])
def test_garbage_body_is_a_bad_response(fake: FakeUpstream, body: bytes) -> None:
    fake.enqueue(raw_reply(body))
    error, waits = run(fake.url, post)
    assert isinstance(error, UpstreamBadResponse) and error.status == 502 and waits == []


def test_stream_events_arrive_whole(fake: FakeUpstream) -> None:
    fake.enqueue(stream_reply(["a", "b"], usage=usage_body(2, 2)))
    events, _ = run(fake.url, stream_all)
    assert len(events) == 6 and events[-1] == b"data: [DONE]\n\n"
    assert all(event.endswith(b"\n\n") and event.startswith(b"data: ") for event in events)


def test_stream_is_retried_before_its_first_event(fake: FakeUpstream) -> None:
    fake.enqueue(error_reply(503, "warming up"), stream_reply(["x"]))
    events, waits = run(fake.url, stream_all)
    assert len(events) == 4 and waits == [0.5]


def test_stream_cut_midway_raises_bad_response(fake: FakeUpstream) -> None:
    fake.enqueue(stream_reply(["a", "b"], ending="cut"))

    async def partial(forwarder: Forwarder) -> list[bytes]:
        stream = await forwarder.open_stream("/chat/completions", BODY)
        seen = []
        try:
            async for event in stream.events():
                seen.append(event)
        except UpstreamBadResponse:
            return seen
        finally:
            await stream.aclose()
        raise AssertionError("the cut went unnoticed")

    seen, waits = run(fake.url, partial)
    assert 1 <= len(seen) <= 4 and waits == []  # aiohttp drops what it buffered before a cut


def test_stream_stall_raises_timeout(fake: FakeUpstream) -> None:
    fake.enqueue(stream_reply(["a"], ending="stall", stall_s=2.0))
    error, _ = run(fake.url, stream_all, timeout_s=0.3)
    assert isinstance(error, UpstreamTimeout)


def test_crlf_events_and_a_done_without_blank_line(fake: FakeUpstream) -> None:
    fake.enqueue(sse_reply([b'data: {"a": 1}\r\n\r\n', b"data: [DONE]"], ending="eof"))
    events, _ = run(fake.url, stream_all)
    assert events == [b'data: {"a": 1}\n\n', b"data: [DONE]\n\n"]
