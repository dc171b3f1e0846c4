"""The real openai client against a real (fake) HTTP upstream on 127.0.0.1.

`TestOpenAIBackendContract` runs the shared upstream contract; the tests below it
cover what only a parsing client does: usage and its estimate, params sent as
given, deltas, and the shapes of answer it refuses.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import pytest
from deadline_contract import DeadlineContract
from fake_upstream import (
    FakeUpstream,
    Reply,
    chunk_body,
    completion,
    completion_body,
    error_reply,
    json_reply,
    sse_reply,
    stream_reply,
    usage_body,
)
from upstream_contract import EXACT, OpenUpstream, UpstreamContract

from router.errors import (
    UpstreamBadResponse,
    UpstreamRejected,
    UpstreamServerError,
    UpstreamTimeout,
)
from router.upstream import NO_KEY, ChatResult, OpenAIBackend, RetryPolicy, StreamDelta, Usage

if TYPE_CHECKING:
    from router.local_server import LocalServer

MESSAGES = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "2+2?"}]


class SdkUpstream:
    """OpenAIBackend behind the contract's interface; its answers rebuilt as OpenAI JSON."""

    def __init__(self, url: str, *, retry: RetryPolicy, timeout_s: float) -> None:
        self.waits: list[float] = []
        self.backend = OpenAIBackend(url, timeout_s=timeout_s, retry=retry, sleep=self.waits.append)

    def complete(
        self, body: dict[str, Any], *, deadline: float | None = None
    ) -> tuple[int, dict[str, Any]]:
        messages, model, params = _split(body)
        result = self.backend.chat(messages, model=model, deadline=deadline, **params)
        choice = {"index": 0, "message": {"role": "assistant", "content": result.text}}
        usage = {
            "prompt_tokens": result.usage.prompt_tokens,
            "completion_tokens": result.usage.completion_tokens,
        }
        return 200, {"model": result.model, "choices": [choice], "usage": usage}

    def stream_text(self, body: dict[str, Any], *, deadline: float | None = None) -> list[str]:
        messages, model, params = _split(body)
        deltas = self.backend.stream(messages, model=model, deadline=deadline, **params)
        return [d.text for d in deltas if d.text]

    def models(self) -> list[str]:
        return self.backend.models()

    def close(self) -> None:
        self.backend.close()


def _split(body: dict[str, Any]) -> tuple[list[dict], str, dict[str, Any]]:
    params = {k: v for k, v in body.items() if k not in ("messages", "model")}
    return body["messages"], body["model"], params


class TestOpenAIBackendContract(UpstreamContract, DeadlineContract):
    @pytest.fixture
    def open_upstream(self) -> OpenUpstream:
        return SdkUpstream


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


@pytest.mark.parametrize(
    "reply",
    [
        json_reply({}),
        json_reply({"choices": []}),
        json_reply({"choices": "abc"}),
        json_reply({"choices": [{"message": {"content": 42}}]}),
    ],
    ids=["empty", "no-choices", "choices-str", "content-int"],
)
def test_answer_without_a_usable_choice_is_a_bad_response(
    backend: OpenAIBackend, fake: FakeUpstream, sleeps: list[float], reply: Reply
) -> None:
    """Garbage bodies are the contract's; these are JSON objects only a parser can refuse."""
    fake.enqueue(reply)
    with pytest.raises(UpstreamBadResponse):
        chat(backend)
    assert (len(fake.requests), sleeps) == (1, [])


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


def test_stream_errors_surface_when_called(backend: OpenAIBackend, fake: FakeUpstream) -> None:
    fake.enqueue(error_reply(400, "bad stop"))
    with pytest.raises(UpstreamRejected, match="bad stop"):
        backend.stream(MESSAGES, model="m")  # not iterated: the caller can still answer 400


@pytest.mark.parametrize("ending", ["cut", "eof"])
def test_stream_cut_midway_is_a_bad_response(
    backend: OpenAIBackend, fake: FakeUpstream, sleeps: list[float], ending: str
) -> None:
    """An "eof" ending is clean but has no finish_reason: only a parsing client sees the cut."""
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
