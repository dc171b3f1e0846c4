"""A client that leaves cancels its upstream call, over real HTTP: the upstream sees its
connection closed, no retry follows, and the record says 499 "client_closed".

Before, the retries went on for nobody (a hung upstream got the completion 4 times) and
the record said 504, or 200 when a late answer came back.
"""

from __future__ import annotations

import json
import socket
import time
from pathlib import Path

import pytest
from slow_upstreams import KEY, HangingUpstream, OneSlotUpstream, records, start_proxy

from router.proxy.server import ServerThread

LEAVES_AFTER_S = 0.3
MARGIN_S = 1.0  # a loaded machine's scheduling


def send_chat(server: ServerThread, *, stream: bool) -> socket.socket:
    """A chat request over a raw socket: nothing but the request's own bytes go out."""
    body = json.dumps(
        {"model": "m", "stream": stream, "messages": [{"role": "user", "content": "hi"}]}
    ).encode()
    head = (
        "POST /v1/chat/completions HTTP/1.1\r\nHost: proxy\r\n"
        f"Authorization: Bearer {KEY}\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    ).encode()
    sock = socket.create_connection((server.host, server.port), timeout=10)
    sock.sendall(head + body)
    return sock


@pytest.mark.parametrize("http", ["httptools", "h11"])
@pytest.mark.parametrize("stream", [False, True], ids=["plain", "stream-before-first-event"])
def test_a_client_that_leaves_cancels_its_hung_upstream_call(
    tmp_path: Path, stream: bool, http: str
) -> None:
    with (
        HangingUpstream() as upstream,
        start_proxy(tmp_path, upstream.url, http=http, upstream_timeout_s=10.0) as server,
    ):
        sock = send_chat(server, stream=stream)
        time.sleep(LEAVES_AFTER_S)
        sock.close()
        assert upstream.wait_closed(timeout_s=5.0), "the upstream call was never cancelled"
        time.sleep(0.5)  # time for a retry, if one were (wrongly) made
        assert upstream.requests == 1
        assert upstream.closed_after[0] < LEAVES_AFTER_S + MARGIN_S
        assert records(server, tmp_path) == [(499, "client_closed")]


def test_a_client_that_leaves_mid_stream_closes_the_upstream_stream(tmp_path: Path) -> None:
    with (
        OneSlotUpstream(events=200, interval_s=0.02) as upstream,
        start_proxy(tmp_path, upstream.url, upstream_timeout_s=10.0) as server,
    ):
        sock = send_chat(server, stream=True)
        assert sock.recv(65536).startswith(b"HTTP/1.1 200")  # the relay has begun
        time.sleep(LEAVES_AFTER_S)
        sock.close()
        deadline = time.monotonic() + 5.0
        while upstream.streams_cut == 0 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert (upstream.streams_cut, upstream.streams_finished) == (1, 0)
        assert records(server, tmp_path) == [(499, "client_closed")]


def test_the_proxy_serves_on_after_a_client_left(tmp_path: Path) -> None:
    with (
        OneSlotUpstream() as upstream,
        start_proxy(tmp_path, upstream.url, upstream_timeout_s=10.0) as server,
    ):
        send_chat(server, stream=True).close()
        with send_chat(server, stream=False) as sock:
            sock.settimeout(5.0)
            answer = sock.recv(65536)
        assert answer.startswith(b"HTTP/1.1 200") and upstream.answers == 1
