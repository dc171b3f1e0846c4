"""The message a client reads for each kind of upstream failure, over real HTTP: words
written for it, never a library's repr ("ClientConnectorError(...)", "<aiohttp...>",
"TimeoutError()")."""

from __future__ import annotations

import json
import re
import socket
from pathlib import Path

import httpx
import pytest
from fake_upstream import (
    FakeUpstream,
    Reply,
    chunk_body,
    completion_body,
    error_reply,
    json_reply,
    raw_reply,
    sse_reply,
)
from slow_upstreams import AUTH, start_proxy

BODY = {"model": "m", "messages": [{"role": "user", "content": "hi"}]}
REPR = re.compile(r"[A-Za-z]+Error\(|<[a-z_.]+ |\bb'")  # Error(...), <aiohttp.X ...>, b'...'

KINDS: dict[str, tuple[Reply, int, str, str]] = {
    "timeout": (
        json_reply(completion_body("late"), delay_s=3.0),
        504,
        "upstream_timeout",
        "the upstream did not answer within 0.5 s",
    ),
    "rate limited": (
        error_reply(429, "quota exceeded"),
        429,
        "upstream_rate_limited",
        "quota exceeded",
    ),
    "server error": (error_reply(500, "kaput"), 502, "upstream_server_error", "kaput"),
    "rejected": (error_reply(400, "bad stop"), 400, "upstream_rejected", "bad stop"),
    "bad response": (
        raw_reply(b"<html>proxy error</html>"),
        502,
        "upstream_bad_response",
        "the upstream answered with a body that is not JSON: <html>proxy error</html>",
    ),
}


@pytest.mark.parametrize("kind", KINDS)
def test_each_kind_reads_cleanly(tmp_path: Path, fake: FakeUpstream, kind: str) -> None:
    reply, status, code, message = KINDS[kind]
    fake.fallback = reply
    settings = {"upstream_timeout_s": 0.5, "upstream_max_retries": 0}
    with start_proxy(tmp_path, fake.url, **settings) as server:
        response = httpx.post(f"{server.url}/chat/completions", json=BODY, headers=AUTH)
    error = response.json()["error"]
    assert (response.status_code, error["code"], error["message"]) == (status, code, message)
    assert not REPR.search(error["message"])


def test_a_refused_connection_reads_cleanly(tmp_path: Path) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))  # bound, never listening: connections are refused
        url = f"http://127.0.0.1:{sock.getsockname()[1]}/v1"
        with start_proxy(tmp_path, url, upstream_max_retries=0) as server:
            response = httpx.post(f"{server.url}/chat/completions", json=BODY, headers=AUTH)
    error = response.json()["error"]
    assert (response.status_code, error["code"]) == (502, "upstream_unreachable")
    assert error["message"] == "cannot connect to the upstream (connection refused)"


@pytest.mark.parametrize(
    ("reply", "message"),
    [
        (
            sse_reply([chunk_body("a")], ending="stall", stall_s=3.0),
            "the upstream stalled for 0.5 s in the middle of a stream",
        ),
        (
            sse_reply([chunk_body("a"), b"data: {not json\n\n"]),
            "the upstream sent an event that is not JSON: {not json",
        ),
    ],
    ids=["stall", "garbage-event"],
)
def test_a_stream_that_breaks_ends_with_a_clean_error_event(
    tmp_path: Path, fake: FakeUpstream, reply: Reply, message: str
) -> None:
    fake.fallback = reply
    with start_proxy(tmp_path, fake.url, upstream_timeout_s=0.5) as server:
        response = httpx.post(
            f"{server.url}/chat/completions", json={**BODY, "stream": True}, headers=AUTH
        )
    events = [line[6:] for line in response.text.splitlines() if line.startswith("data: ")]
    assert events[-1] == "[DONE]" and json.loads(events[-2])["error"]["message"] == message
