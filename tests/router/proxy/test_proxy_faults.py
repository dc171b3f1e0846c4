"""Upstream faults, injected by a fake upstream on 127.0.0.1, seen by the real openai client.

Each fault is tried over real HTTP through the real proxy, with the client's
own retries off so the proxy's answer is what the test sees: a bounded number
of upstream attempts, then an OpenAI-style 429/502/504 (or, once a stream has
started, an error event the SDK raises on), within a deadline: never a hang.
After every fault the same proxy serves a healthy request.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import openai
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
)
from proxy_fakes import config_for

from router.local_server import free_port
from router.proxy.app import create_app
from router.proxy.config import ProxyConfig
from router.proxy.server import ServerThread

TIMEOUT_S = 2.0  # the proxy's upstream timeout, each request's deadline: room for 2 backoffs
RETRIES = 2
DEADLINE_S = 8.0  # any fault answered within this, whatever it is
MESSAGES = [{"role": "user", "content": "hi"}]


@dataclass(frozen=True)
class Fault:
    replies: tuple[Reply, ...]
    stream: bool
    status: int | None  # the client's HTTP status; None: a stream that errors mid-way
    code: str
    attempts: int  # upstream requests the proxy makes


SLOW = json_reply(completion_body("late"), delay_s=TIMEOUT_S * 3)
FAULTS = {
    "timeout": Fault((SLOW,), False, 504, "upstream_timeout", 1),  # the deadline is spent
    "429 with Retry-After": Fault(
        (error_reply(429, "slow down", headers={"Retry-After": "0"}),) * 3,
        False,
        429,
        "upstream_rate_limited",
        3,
    ),
    "500": Fault((error_reply(500, "kaput"),) * 3, False, 502, "upstream_server_error", 3),
    "500 then fine": Fault((error_reply(500, "blip"), completion("ok")), False, 200, "", 2),
    "garbage body": Fault((raw_reply(b"<html>bad gateway</html>"),), False, 502, "", 1),
    "not JSON object": Fault((raw_reply(b"[1, 2]"),), False, 502, "", 1),
    "stream refused": Fault((error_reply(503, "down"),) * 3, True, 502, "", 3),
    "stream stalls": Fault(
        (stream_reply(["a"], ending="stall", stall_s=5.0),), True, None, "upstream_timeout", 1
    ),
    "stream cut": Fault((stream_reply(["a", "b"], ending="cut"),), True, None, "", 1),
    "stream ends unfinished": Fault(
        (sse_reply([chunk_body("Fo")], ending="eof"),), True, None, "upstream_bad_response", 1
    ),
    "stream garbage event": Fault(
        (sse_reply([chunk_body("a"), b"data: {not json\n\n"], ending="eof"),), True, None, "", 1
    ),
}


def proxy_for(tmp_path: Path, upstream_url: str) -> ServerThread:
    settings = config_for(tmp_path).settings.replace(
        upstream_url=upstream_url, upstream_timeout_s=TIMEOUT_S, upstream_max_retries=RETRIES
    )
    config = ProxyConfig.from_settings(settings, sleep_enabled=False)
    return ServerThread(create_app(config), free_port())


@pytest.fixture
def proxy(tmp_path: Path, fake: FakeUpstream) -> Iterator[ServerThread]:
    with proxy_for(tmp_path, fake.url) as server:
        yield server


def client_for(proxy: ServerThread) -> openai.OpenAI:
    return openai.OpenAI(base_url=proxy.url, api_key="sk-test", max_retries=0, timeout=30)


def timed(call: Callable[[], object]) -> tuple[object, float]:
    started = time.monotonic()
    try:
        result: object = call()
    except openai.APIError as exc:
        result = exc
    return result, time.monotonic() - started


@pytest.mark.parametrize("name", FAULTS)
def test_fault_gets_a_clear_bounded_answer(
    proxy: ServerThread, fake: FakeUpstream, name: str
) -> None:
    fault = FAULTS[name]
    fake.enqueue(*fault.replies)
    client = client_for(proxy)

    def call() -> object:
        if not fault.stream:
            return client.chat.completions.create(model="m", messages=MESSAGES)
        return list(client.chat.completions.create(model="m", messages=MESSAGES, stream=True))

    result, seconds = timed(call)
    assert seconds < DEADLINE_S, f"{name} took {seconds:.1f} s"
    assert len(fake.requests) == fault.attempts
    if fault.status == 200:
        assert not isinstance(result, Exception)
    elif fault.status is not None:
        assert isinstance(result, openai.APIStatusError) and result.status_code == fault.status
        error = result.body if isinstance(result.body, dict) else {}
        assert error.get("message") and error.get("type")
        if fault.code:
            assert error.get("code") == fault.code, error
        if fault.status == 429:
            assert result.response.headers["retry-after"] == "1"
    else:  # the stream had started: the SDK raises on the proxy's error event
        assert isinstance(result, openai.APIError), result
        if fault.code:
            assert fault.code in str(result.body) or fault.code in str(result), result
    fake.enqueue(completion("still here"))
    answer = client.chat.completions.create(model="m", messages=MESSAGES)
    assert answer.choices[0].message.content == "still here"


def test_refused_connection_is_502_within_the_deadline(tmp_path: Path) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        closed = sock.getsockname()[1]  # bound, never listening: connections are refused
        with proxy_for(tmp_path, f"http://127.0.0.1:{closed}/v1") as proxy:
            result, seconds = timed(
                lambda: client_for(proxy).chat.completions.create(model="m", messages=MESSAGES)
            )
    assert seconds < DEADLINE_S
    assert isinstance(result, openai.APIStatusError) and result.status_code == 502
    assert isinstance(result.body, dict) and result.body["code"] == "upstream_unreachable"
