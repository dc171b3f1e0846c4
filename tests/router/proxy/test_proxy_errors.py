"""Bad input gets a 4xx in OpenAI's shape, upstream faults a clear 4xx/5xx; serving goes on."""

from __future__ import annotations

import socket
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
from fake_upstream import (
    FakeUpstream,
    completion,
    completion_body,
    error_reply,
    json_reply,
    raw_reply,
)
from fastapi.testclient import TestClient
from proxy_fakes import KEY_A, QUICK, config_for

from router.local_server import free_port
from router.proxy.app import create_app
from router.proxy.config import ProxyConfig
from router.proxy.server import ServerThread
from router.upstream import Forwarder

AUTH = {"Authorization": f"Bearer {KEY_A}"}  # local mode: any key, but a key

GOOD = {"model": "m", "messages": [{"role": "user", "content": "hi"}]}
USER = {"role": "user", "content": "hi"}


def assert_openai_error(response: object, status: int) -> dict:
    assert response.status_code == status, response.text  # type: ignore[attr-defined]
    error = response.json()["error"]  # type: ignore[attr-defined]
    assert set(error) == {"message", "type", "param", "code"} and error["message"]
    return error


def assert_still_serving(client: TestClient, fake: FakeUpstream) -> None:
    fake.enqueue(completion("fine"))
    response = client.post("/v1/chat/completions", json=GOOD)
    assert (
        response.status_code == 200
        and response.json()["choices"][0]["message"]["content"] == "fine"
    )


BAD_BODIES: dict[str, bytes] = {
    "malformed json": b'{"model": "m", "messages": [',
    "not an object": b"[1, 2, 3]",
    "empty body": b"",
    "invalid utf-8": b'{"model": "m", "messages": [{"role": "user", "content": "\xff\xfe"}]}',
    "NaN temperature": b'{"model": "m", "messages": [{"role": "user", "content": "hi"}], '
    b'"temperature": NaN}',
    "huge integer": b'{"model": "m", "messages": [{"role": "user", "content": "hi"}], '
    b'"max_tokens": ' + b"9" * 5000 + b"}",
}
BAD_FIELDS: dict[str, dict] = {
    "missing messages": {"model": "m"},
    "empty messages": {"model": "m", "messages": []},
    "messages not a list": {"model": "m", "messages": "hi"},
    "message not an object": {"model": "m", "messages": ["hi"]},
    "unknown role": {"model": "m", "messages": [{"role": "wizard", "content": "hi"}]},
    "missing role": {"model": "m", "messages": [{"content": "hi"}]},
    "user content a number": {"model": "m", "messages": [{"role": "user", "content": 4}]},
    "user content missing": {"model": "m", "messages": [{"role": "user"}]},
    "model a number": {"model": 4, "messages": [USER]},
    "stream a string": {"model": "m", "messages": [USER], "stream": "yes"},
    "temperature a string": {"model": "m", "messages": [USER], "temperature": "hot"},
    "max_tokens a float": {"model": "m", "messages": [USER], "max_tokens": 1.5},
    "max_tokens zero": {"model": "m", "messages": [USER], "max_tokens": 0},
    "stream_options a list": {"model": "m", "messages": [USER], "stream_options": []},
    "absurd max_tokens": {"model": "m", "messages": [USER], "max_tokens": 10**15},
    "negative max_tokens": {"model": "m", "messages": [USER], "max_tokens": -5},
    "temperature out of range": {"model": "m", "messages": [USER], "temperature": 7},
    "top_p negative": {"model": "m", "messages": [USER], "top_p": -0.1},
    "n too large": {"model": "m", "messages": [USER], "n": 100000},
    "stop a number": {"model": "m", "messages": [USER], "stop": 3},
    "stop list of numbers": {"model": "m", "messages": [USER], "stop": [1, 2]},
    "tools an object": {"model": "m", "messages": [USER], "tools": {"a": 1}},
    "logit_bias a list": {"model": "m", "messages": [USER], "logit_bias": [1]},
    "seed a string": {"model": "m", "messages": [USER], "seed": "7"},
    "user a number": {"model": "m", "messages": [USER], "user": 7},
    "metadata context a number": {
        "model": "m",
        "messages": [USER],
        "metadata": {"sleeptime_context": 3},
    },
    "context id with spaces": {
        "model": "m",
        "messages": [USER],
        "metadata": {"sleeptime_context": "a b"},
    },
}


@pytest.mark.parametrize("name", BAD_BODIES)
def test_bad_body_is_400(client: TestClient, fake: FakeUpstream, name: str) -> None:
    response = client.post(
        "/v1/chat/completions",
        content=BAD_BODIES[name],
        headers={"Content-Type": "application/json"},
    )
    assert assert_openai_error(response, 400)["code"] == "invalid_json"
    assert_still_serving(client, fake)


@pytest.mark.parametrize("name", BAD_FIELDS)
def test_bad_fields_are_400(client: TestClient, fake: FakeUpstream, name: str) -> None:
    response = client.post("/v1/chat/completions", json=BAD_FIELDS[name])
    assert_openai_error(response, 400)
    assert fake.requests == []
    assert_still_serving(client, fake)


def test_oversized_body_is_413(make_client: Callable[..., TestClient], fake: FakeUpstream) -> None:
    client = make_client(max_body_bytes=1000)
    big = {"model": "m", "messages": [{"role": "user", "content": "x" * 2000}]}
    assert (
        assert_openai_error(client.post("/v1/chat/completions", json=big), 413)["code"]
        == "body_too_large"
    )

    def chunked() -> object:
        yield b'{"model": "m", "messages": [{"role": "user", "content": "'
        yield b"x" * 2000
        yield b'"}]}'

    headers = {"Content-Type": "application/json"}  # no Content-Length
    response = client.post("/v1/chat/completions", content=chunked(), headers=headers)
    assert_openai_error(response, 413)
    assert_still_serving(client, fake)


def test_bad_context_header_is_400(client: TestClient, fake: FakeUpstream) -> None:
    headers = {"X-Sleeptime-Context": "no spaces allowed"}
    response = client.post("/v1/chat/completions", json=GOOD, headers=headers)
    assert assert_openai_error(response, 400)["param"] == "x-sleeptime-context"


def test_unknown_path_and_method_are_openai_errors(client: TestClient) -> None:
    assert assert_openai_error(client.get("/v1/nothing"), 404)["code"] == "not_found"
    assert_openai_error(client.get("/v1/chat/completions"), 405)


def test_upstream_refused_is_502(tmp_path: Path) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    forwarder = Forwarder(f"http://127.0.0.1:{port}/v1", retry=QUICK)
    app = create_app(config_for(tmp_path, sleep_enabled=False), forwarder=forwarder)
    with TestClient(app, headers=AUTH) as client:
        response = client.post("/v1/chat/completions", json=GOOD)
        assert assert_openai_error(response, 502)["code"] == "upstream_unreachable"
        assert response.headers["x-request-id"].startswith("req-")
        client.portal.call(forwarder.aclose)


def test_upstream_timeout_is_504(
    make_client: Callable[..., TestClient], fake: FakeUpstream
) -> None:
    client = make_client(timeout_s=0.2)
    fake.enqueue(*[json_reply(completion_body("late"), delay_s=1.0)] * 3)
    response = client.post("/v1/chat/completions", json=GOOD)
    assert assert_openai_error(response, 504)["code"] == "upstream_timeout"


def test_upstream_429_passes_retry_after(client: TestClient, fake: FakeUpstream) -> None:
    fake.enqueue(*[error_reply(429, "slow down", headers={"Retry-After": "0"})] * 3)
    response = client.post("/v1/chat/completions", json=GOOD)
    error = assert_openai_error(response, 429)
    assert error["type"] == "rate_limit_error" and response.headers["retry-after"] == "1"
    assert len(fake.requests) == 3  # retried within the budget first


def test_upstream_500_is_502_after_retries(client: TestClient, fake: FakeUpstream) -> None:
    fake.enqueue(*[error_reply(500, "kaput")] * 3)
    error = assert_openai_error(client.post("/v1/chat/completions", json=GOOD), 502)
    assert error["code"] == "upstream_server_error" and "kaput" in error["message"]


def test_upstream_4xx_keeps_its_status_and_words(client: TestClient, fake: FakeUpstream) -> None:
    fake.enqueue(error_reply(404, "The model 'nope' does not exist"))
    error = assert_openai_error(client.post("/v1/chat/completions", json=GOOD), 404)
    assert error["message"] == "The model 'nope' does not exist"


def test_upstream_garbage_is_502(client: TestClient, fake: FakeUpstream) -> None:
    fake.enqueue(raw_reply(b"<html>proxy error</html>"))
    error = assert_openai_error(client.post("/v1/chat/completions", json=GOOD), 502)
    assert error["code"] == "upstream_bad_response"
    assert_still_serving(client, fake)


def test_stream_refused_before_first_byte_is_a_plain_error(
    client: TestClient, fake: FakeUpstream
) -> None:
    fake.enqueue(*[error_reply(503, "down")] * 3)
    response = client.post("/v1/chat/completions", json={**GOOD, "stream": True})
    assert_openai_error(response, 502)
    assert client.get("/health").json()["inflight"] == 0


def test_unknown_model_is_404_when_models_are_listed(
    make_client: Callable[..., TestClient], fake: FakeUpstream
) -> None:
    client = make_client(models=("m", "m-large"))
    response = client.post("/v1/chat/completions", json={**GOOD, "model": "gpt-9"})
    error = assert_openai_error(response, 404)
    assert error["code"] == "model_not_found" and error["param"] == "model"
    assert fake.requests == []
    fake.enqueue(completion("fine"))
    ok = client.post("/v1/chat/completions", json={**GOOD, "model": "m-large"})
    assert ok.status_code == 200 and fake.requests[0].json["model"] == "m-large"


def test_embedded_model_answers_only_to_its_name(tmp_path: Path, fake: FakeUpstream) -> None:
    """llama.cpp answers any model name with itself; the proxy says the name is wrong."""
    settings = config_for(tmp_path).settings.replace(upstream_url="")
    forwarder = Forwarder(fake.url, retry=QUICK)
    config = ProxyConfig.from_settings(settings, sleep_enabled=False)
    with TestClient(create_app(config, forwarder=forwarder), headers=AUTH) as client:
        wrong = client.post("/v1/chat/completions", json={**GOOD, "model": "gpt-4o"})
        assert assert_openai_error(wrong, 404)["code"] == "model_not_found"
        fake.enqueue(completion("fine"), completion("fine"))
        assert client.post("/v1/chat/completions", json=GOOD).status_code == 200  # "m" itself
        alias = client.post("/v1/chat/completions", json={**GOOD, "model": "sleeptime"})
        assert alias.status_code == 200
        client.portal.call(forwarder.aclose)


def test_unknown_parameters_pass_through(client: TestClient, fake: FakeUpstream) -> None:
    """A new OpenAI parameter, or a server's own (llama.cpp's top_k), is the upstream's call."""
    fake.enqueue(completion("fine"), error_reply(400, "Unrecognized request argument: frob"))
    assert client.post("/v1/chat/completions", json={**GOOD, "top_k": 40}).status_code == 200
    assert fake.requests[0].json["top_k"] == 40
    rejected = client.post("/v1/chat/completions", json={**GOOD, "frob": 1})
    assert assert_openai_error(rejected, 400)["message"] == "Unrecognized request argument: frob"


def test_oversized_context_passes_through_unstored(
    make_client: Callable[..., TestClient], fake: FakeUpstream
) -> None:
    client = make_client(max_context_bytes=1000)
    big = {"role": "system", "content": "fact. " * 400}
    fake.enqueue(completion("fine"), completion("fine"))
    for _ in range(2):  # twice: a context seen twice would be queued for sleep
        response = client.post("/v1/chat/completions", json={**GOOD, "messages": [big, USER]})
        assert response.status_code == 200
        assert "x-sleeptime-context" not in response.headers
    registered = client.post("/v1/contexts", json={"context": "fact. " * 400})
    assert assert_openai_error(registered, 413)["code"] == "context_too_large"
    client = make_client(max_inflight_per_key=1)  # a slot kept by a failed request shows
    state = client.app.state.proxy  # type: ignore[attr-defined]
    state.records.writer.flush()
    assert state.store.job_counts() == {}


def test_a_bug_in_the_chat_handler_is_a_500_in_openai_shape(
    make_client: Callable[..., TestClient], fake: FakeUpstream, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The chat route skips Starlette's exception middleware for speed; its outermost one
    must still answer an unforeseen error in OpenAI's shape and release the tenant's slot."""

    def broken(*args: object) -> None:
        raise RuntimeError("a bug")

    client = make_client(max_inflight_per_key=1)  # a slot kept by a failed request shows
    state = client.app.state.proxy  # type: ignore[attr-defined]
    monkeypatch.setattr(state.models, "resolve", broken)
    # as a server would
    answering = TestClient(client.app, raise_server_exceptions=False, headers=AUTH)
    for _ in range(3):
        response = answering.post("/v1/chat/completions", json=GOOD)
        assert assert_openai_error(response, 500)["code"] == "internal_error"
    monkeypatch.undo()
    assert_still_serving(client, fake)


def test_a_bug_behind_a_real_server_is_a_500_in_openai_shape(
    tmp_path: Path, fake: FakeUpstream, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A real server runs `ServedEntry`, which takes routed POSTs past Starlette's error
    layer: it must answer an unforeseen error the same way, and serve on."""
    settings = config_for(tmp_path).settings.replace(upstream_url=fake.url)
    app = create_app(ProxyConfig.from_settings(settings, sleep_enabled=False))
    with ServerThread(app, free_port()) as server:
        assert app.state.served is not app  # the fast entry is what uvicorn serves
        state = app.state.proxy

        def broken(*args: object) -> None:
            raise RuntimeError("a bug")

        monkeypatch.setattr(state.models, "resolve", broken)
        response = httpx.post(f"{server.url}/chat/completions", json=GOOD, headers=AUTH)
        assert assert_openai_error(response, 500)["code"] == "internal_error"
        monkeypatch.undo()
        fake.enqueue(completion("fine"))
        answer = httpx.post(f"{server.url}/chat/completions", json=GOOD, headers=AUTH)
        assert answer.status_code == 200
