"""The real openai client against a real (fake) HTTP upstream on 127.0.0.1."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from email.utils import formatdate
from typing import TYPE_CHECKING

import pytest
from fake_upstream import (
    FakeUpstream,
    Reply,
    chunk_body,
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
from router.upstream import (
    NO_KEY,
    ChatResult,
    OpenAIBackend,
    RetryPolicy,
    StreamDelta,
    Usage,
    estimate_prompt_tokens,
)

if TYPE_CHECKING:
    from router.local_server import LocalServer

MESSAGES = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "2+2?"}]
EXACT = RetryPolicy(max_retries=3, backoff_base_s=0.5, backoff_max_s=8.0, jitter=0.0)


@pytest.fixture
def fake() -> Iterator[FakeUpstream]:
    with FakeUpstream() as server:
        yield server


@pytest.fixture
def sleeps() -> list[float]:
    return []


@pytest.fixture
def backend(fake: FakeUpstream, sleeps: list[float]) -> Iterator[OpenAIBackend]:
    with OpenAIBackend(fake.url, timeout_s=0.5, retry=EXACT, sleep=sleeps.append) as b:
        yield b


def chat(backend: OpenAIBackend, **params: object) -> ChatResult:
    return backend.chat(MESSAGES, model="m", **params)


# answers and usage


def test_plain_answer_reads_usage_and_cached_tokens(
    backend: OpenAIBackend, fake: FakeUpstream
) -> None:
    fake.enqueue(completion("4", model="qwen", usage=usage_body(20, 1, cached=16)))
    result = chat(backend)
    assert (result.text, result.finish_reason, result.model) == ("4", "stop", "qwen")
    assert result.usage == Usage(prompt_tokens=20, completion_tokens=1, cached_prompt_tokens=16)
    assert 0 <= result.latency_s < 5
    sent = fake.requests[0]
    assert (sent.method, sent.path) == ("POST", "/v1/chat/completions")
    assert sent.json == {"messages": MESSAGES, "model": "m", "stream": False}
    assert sent.headers["authorization"] == f"Bearer {NO_KEY}"


def test_api_key_is_sent(fake: FakeUpstream) -> None:
    fake.enqueue(completion("ok", usage=usage_body(1, 1)))
    with OpenAIBackend(fake.url, "sk-test") as backend:
        chat(backend)
    assert fake.requests[0].headers["authorization"] == "Bearer sk-test"


def test_missing_usage_is_estimated(backend: OpenAIBackend, fake: FakeUpstream) -> None:
    fake.enqueue(completion("The answer is 4."))
    usage = chat(backend).usage
    # "Be brief." 9 chars -> 3 + 4, "2+2?" 4 chars -> 1 + 4; 16 chars of answer -> 4
    assert usage == Usage(prompt_tokens=12, completion_tokens=4, estimated=True)


def test_usage_without_cache_details_counts_zero_cached(
    backend: OpenAIBackend, fake: FakeUpstream
) -> None:
    body = completion_body("x", usage=usage_body(5, 1))
    body["usage"]["prompt_tokens_details"] = None
    fake.enqueue(json_reply(body))
    assert chat(backend).usage == Usage(5, 1, 0)


def test_estimate_counts_text_parts_only() -> None:
    parts = [{"type": "text", "text": "abcdefgh"}, {"type": "image_url", "image_url": {}}]
    assert estimate_prompt_tokens([{"role": "user", "content": parts}]) == 2 + 4


def test_params_pass_through_unchanged(backend: OpenAIBackend, fake: FakeUpstream) -> None:
    params = {
        "max_tokens": 64,
        "temperature": 0.2,
        "seed": 7,
        "n": 2,
        "stop": ["\n\n"],
        "reasoning_effort": "low",
        "top_k": 20,
        "chat_template_kwargs": {"enable_thinking": False},
    }
    fake.enqueue(completion("ok", usage=usage_body(1, 1)))
    chat(backend, **params, stream=True)  # stream is decided by the method, not the params
    assert fake.requests[0].json == {"messages": MESSAGES, "model": "m", "stream": False, **params}


def test_models_lists_ids(backend: OpenAIBackend, fake: FakeUpstream) -> None:
    fake.enqueue(
        json_reply(
            {
                "object": "list",
                "data": [
                    {"id": "a", "object": "model", "created": 0, "owned_by": "x"},
                    {"id": "b", "object": "model", "created": 0, "owned_by": "x"},
                ],
            }
        )
    )
    assert backend.models() == ["a", "b"]
    assert (fake.requests[0].method, fake.requests[0].path) == ("GET", "/v1/models")


# streaming


def test_stream_yields_deltas_then_finish_and_usage(
    backend: OpenAIBackend, fake: FakeUpstream
) -> None:
    fake.enqueue(stream_reply(["The answer", " is 4."], usage=usage_body(20, 5, cached=8)))
    events = list(backend.stream(MESSAGES, model="m", max_tokens=9))
    assert events == [
        StreamDelta("The answer"),
        StreamDelta(" is 4."),
        StreamDelta("", "stop", Usage(20, 5, 8)),
    ]
    body = fake.requests[0].json
    assert body["stream"] is True and body["stream_options"] == {"include_usage": True}
    assert body["max_tokens"] == 9


def test_stream_without_usage_is_estimated(backend: OpenAIBackend, fake: FakeUpstream) -> None:
    fake.enqueue(stream_reply(["abcd", "efgh"], finish_reason="length"))
    final = list(backend.stream(MESSAGES, model="m"))[-1]
    assert final == StreamDelta("", "length", Usage(12, 2, estimated=True))


def test_stream_relays_only_the_first_choice(backend: OpenAIBackend, fake: FakeUpstream) -> None:
    fake.enqueue(
        sse_reply(
            [
                chunk_body("a"),
                chunk_body("X", index=1),
                chunk_body("b"),
                chunk_body(finish_reason="stop"),
                chunk_body(usage=usage_body(1, 2)),
            ]
        )
    )
    assert "".join(d.text for d in backend.stream(MESSAGES, model="m", n=2)) == "ab"


def test_stream_retries_before_the_first_chunk(
    backend: OpenAIBackend, fake: FakeUpstream, sleeps: list[float]
) -> None:
    fake.enqueue(error_reply(503, "warming up"), stream_reply(["ok"], usage=usage_body(1, 1)))
    assert [d.text for d in backend.stream(MESSAGES, model="m")] == ["ok", ""]
    assert sleeps == [0.5]


def test_stream_errors_surface_when_called(backend: OpenAIBackend, fake: FakeUpstream) -> None:
    fake.enqueue(error_reply(400, "bad stop"))
    with pytest.raises(UpstreamRejected, match="bad stop"):
        backend.stream(MESSAGES, model="m")  # not iterated: the caller can still answer 400


@pytest.mark.parametrize("ending", ["cut", "eof"])
def test_stream_cut_midway_is_a_bad_response(
    backend: OpenAIBackend, fake: FakeUpstream, sleeps: list[float], ending: str
) -> None:
    fake.enqueue(sse_reply([chunk_body("partial"), chunk_body(" answ")], ending=ending))
    received: list[str] = []
    with pytest.raises(UpstreamBadResponse, match="2 deltas"):
        received.extend(d.text for d in backend.stream(MESSAGES, model="m"))
    assert received == ["partial", " answ"]
    assert (len(fake.requests), sleeps) == (1, [])


def test_stalled_stream_times_out(backend: OpenAIBackend, fake: FakeUpstream) -> None:
    fake.enqueue(sse_reply([chunk_body("thinking")], ending="stall"))
    received: list[str] = []
    with pytest.raises(UpstreamTimeout):
        received.extend(d.text for d in backend.stream(MESSAGES, model="m"))
    assert received == ["thinking"]


@pytest.mark.parametrize("event", [b"data: {not json\n\n", b"data: \xff\xfe\n\n"])
def test_stream_garbage_event_is_a_bad_response(
    backend: OpenAIBackend, fake: FakeUpstream, event: bytes
) -> None:
    fake.enqueue(sse_reply([chunk_body("a"), event]))
    with pytest.raises(UpstreamBadResponse):
        list(backend.stream(MESSAGES, model="m"))


def test_stream_error_event_is_a_server_error(backend: OpenAIBackend, fake: FakeUpstream) -> None:
    fake.enqueue(sse_reply([chunk_body("a"), {"error": {"message": "KV cache full"}}]))
    with pytest.raises(UpstreamServerError, match="KV cache full"):
        list(backend.stream(MESSAGES, model="m"))


# retries and errors


def test_retry_after_is_honoured_and_capped(
    backend: OpenAIBackend, fake: FakeUpstream, sleeps: list[float]
) -> None:
    in_an_hour = formatdate(time.time() + 3600, usegmt=True)
    fake.enqueue(
        error_reply(429, "slow down", headers={"Retry-After": "2"}),
        error_reply(503, "busy", headers={"Retry-After": in_an_hour}),
        completion("ok", usage=usage_body(1, 1)),
    )
    assert chat(backend).text == "ok"
    assert sleeps == [2.0, 8.0]
    assert len(fake.requests) == 3


def test_rate_limited_after_all_retries(
    backend: OpenAIBackend, fake: FakeUpstream, sleeps: list[float]
) -> None:
    fake.fallback = error_reply(429, "quota", headers={"Retry-After": "30"})
    with pytest.raises(UpstreamRateLimited, match="quota") as caught:
        chat(backend)
    assert caught.value.retry_after == 30.0
    assert sleeps == [8.0, 8.0, 8.0]


def test_server_errors_retry_with_backoff_then_raise(
    backend: OpenAIBackend, fake: FakeUpstream, sleeps: list[float]
) -> None:
    fake.fallback = raw_reply(b"<html>Bad Gateway</html>", 502, content_type="text/html")
    with pytest.raises(UpstreamServerError, match="Bad Gateway") as caught:
        chat(backend)
    assert caught.value.upstream_status == 502
    assert len(fake.requests) == EXACT.max_retries + 1
    assert sleeps == [0.5, 1.0, 2.0]


def test_rejected_at_once_with_the_upstream_message(
    backend: OpenAIBackend, fake: FakeUpstream, sleeps: list[float]
) -> None:
    fake.enqueue(error_reply(400, "max_tokens must be positive"))
    with pytest.raises(UpstreamRejected) as caught:
        chat(backend, max_tokens=-1)
    assert str(caught.value) == "max_tokens must be positive"
    assert (caught.value.status, caught.value.upstream_status) == (400, 400)
    assert (len(fake.requests), sleeps) == (1, [])


@pytest.fixture
def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_connection_refused(closed_port: int, sleeps: list[float]) -> None:
    url = f"http://127.0.0.1:{closed_port}/v1"
    with OpenAIBackend(url, timeout_s=0.5, retry=EXACT, sleep=sleeps.append) as backend:
        with pytest.raises(UpstreamConnectionError, match="refused"):
            chat(backend)
        with pytest.raises(UpstreamConnectionError):
            backend.stream(MESSAGES, model="m")
    assert sleeps == [0.5, 1.0, 2.0] * 2


def test_slow_upstream_times_out(fake: FakeUpstream, sleeps: list[float]) -> None:
    fake.fallback = json_reply(completion_body("late"), delay_s=3.0)
    policy = RetryPolicy(max_retries=1, jitter=0.0)
    backend = OpenAIBackend(fake.url, timeout_s=0.5, retry=policy, sleep=sleeps.append)
    with backend, pytest.raises(UpstreamTimeout):
        chat(backend)
    assert (len(fake.requests), sleeps) == (2, [0.5])


@pytest.mark.parametrize(
    "reply",
    [
        raw_reply(b"{not json"),
        raw_reply(b"\xff\xfe\x00garbage"),
        raw_reply(b"<html>hello</html>", content_type="text/html"),
        json_reply({}),
        json_reply([1, 2]),
        json_reply({"choices": []}),
        json_reply({"choices": "abc"}),
        json_reply({"choices": [{"message": {"content": 42}}]}),
    ],
    ids=["json", "binary", "html", "empty", "list", "no-choices", "choices-str", "content-int"],
)
def test_invalid_body_is_a_bad_response(
    backend: OpenAIBackend, fake: FakeUpstream, sleeps: list[float], reply: Reply
) -> None:
    fake.enqueue(reply)
    with pytest.raises(UpstreamBadResponse):
        chat(backend)
    assert (len(fake.requests), sleeps) == (1, [])


def test_backoff_jitter_stays_within_its_band() -> None:
    policy = RetryPolicy(backoff_base_s=1.0, backoff_max_s=4.0, jitter=0.5)
    for attempt, ceiling in [(0, 1.0), (1, 2.0), (2, 4.0), (10, 4.0), (10_000, 4.0)]:
        delays = [policy.delay_s(attempt) for _ in range(50)]
        assert all(ceiling / 2 <= d <= ceiling for d in delays)
    assert policy.delay_s(0, retry_after=-3) == 0.0


# the real thing: llama.cpp's server with the embedded model


@pytest.mark.integration
def test_real_local_model_chat_and_stream(local_server: LocalServer) -> None:
    ask = [{"role": "user", "content": "Reply with the single word OK."}]
    with OpenAIBackend(local_server.base_url, timeout_s=60) as backend:
        assert backend.models()
        result = backend.chat(ask, model=local_server.model, max_tokens=8, temperature=0)
        events = list(backend.stream(ask, model=local_server.model, max_tokens=8, temperature=0))
    assert result.text and result.finish_reason in ("stop", "length")
    assert result.usage.prompt_tokens > 0 and not result.usage.estimated
    final = events[-1]
    assert final.finish_reason in ("stop", "length") and final.usage is not None
    assert not final.usage.estimated and final.usage.completion_tokens > 0
    assert "".join(e.text for e in events).strip()
