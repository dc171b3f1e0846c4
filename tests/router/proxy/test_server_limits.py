"""Server limits on clients over real sockets: header, body and idle deadlines, header size,
the connection cap; under uvicorn's httptools parser (what `serve` runs) and under h11."""

from __future__ import annotations

import contextlib
import os
import resource
import socket
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fake_upstream import FakeUpstream, completion, completion_body, json_reply
from proxy_fakes import config_for
from raw_http import KEY, connect, error_of, head, header_of, read_until_closed, status_of

from router.local_server import free_port
from router.proxy.app import create_app
from router.proxy.config import ProxyConfig
from router.proxy.server import ServerThread
from router.store import open_store

QUICK_LIMITS = {
    "header_timeout_s": 0.5,
    "body_timeout_s": 0.5,
    "idle_timeout_s": 0.3,
    "max_header_bytes": 2048,
}
MARGIN_S = 1.5  # a loaded CI machine's scheduling
PARSERS = ["httptools", "h11"]
Start = Callable[..., ServerThread]


@pytest.fixture
def start(tmp_path: Path, fake: FakeUpstream) -> Iterator[Start]:
    """start(http="httptools", **settings) -> a started proxy with quick limits."""
    with contextlib.ExitStack() as stack:

        def make(http: str = "httptools", **overrides: Any) -> ServerThread:
            settings = config_for(tmp_path).settings.replace(
                upstream_url=fake.url, **{**QUICK_LIMITS, **overrides}
            )
            store = open_store(tmp_path / "records.db")
            stack.callback(store.close)
            app = create_app(ProxyConfig.from_settings(settings, sleep_enabled=False), store=store)
            server = ServerThread(app, free_port(), http=http)
            server.app = app  # type: ignore[attr-defined]
            return stack.enter_context(server)

        yield make


def health(server: ServerThread, timeout_s: float = 5.0) -> httpx.Response:
    return httpx.get(f"http://{server.host}:{server.port}/health", timeout=timeout_s)


@pytest.mark.parametrize("http", PARSERS)
def test_half_sent_headers_get_408_and_close(start: Start, http: str) -> None:
    server = start(http)
    with connect(server) as sock:
        sock.sendall(b"POST /v1/chat/completions HTTP/1.1\r\nHost: proxy\r\nContent-Ty")
        response, waited = read_until_closed(sock, 5)
    assert status_of(response) == 408 and error_of(response)["code"] == "header_timeout"
    assert header_of(response, "connection") == "close"
    assert 0.4 <= waited <= 0.5 + MARGIN_S
    assert health(server).status_code == 200


@pytest.mark.parametrize("http", PARSERS)
def test_a_silent_connection_is_closed_at_the_header_deadline(start: Start, http: str) -> None:
    server = start(http)
    with connect(server) as sock:
        response, waited = read_until_closed(sock, 5)
    assert response == b"" and 0.4 <= waited <= 0.5 + MARGIN_S


@pytest.mark.parametrize("http", PARSERS)
def test_an_idle_keep_alive_connection_is_closed(start: Start, http: str) -> None:
    server = start(http, header_timeout_s=5.0)
    with connect(server) as sock:
        sock.sendall(head("GET", "/health"))
        time.sleep(0.1)
        first = sock.recv(65536)
        assert status_of(first) == 200
        rest, waited = read_until_closed(sock, 5)
    assert rest == b"" and waited <= 0.3 + MARGIN_S


@pytest.mark.parametrize("http", PARSERS)
def test_keep_alive_requests_within_the_deadlines_are_served(start: Start, http: str) -> None:
    """The header deadline starts again after each response: a slow conversation of quick
    requests is not cut."""
    server = start(http, header_timeout_s=0.6, idle_timeout_s=5.0)
    with httpx.Client(base_url=f"http://{server.host}:{server.port}") as client:
        for _ in range(4):
            assert client.get("/health").status_code == 200
            time.sleep(0.3)  # 1.2 s on one connection, each gap within the deadline


@pytest.mark.parametrize("http", PARSERS)
def test_oversized_headers_get_431(start: Start, http: str) -> None:
    server = start(http)
    with connect(server) as sock:
        sock.sendall(head("GET", "/health", X_Big="a" * 3000))
        response, _ = read_until_closed(sock, 5)
    assert status_of(response) == 431 and error_of(response)["code"] == "headers_too_large"
    with connect(server) as sock:  # a head that never ends is cut at the limit too
        sock.sendall(b"GET /health HTTP/1.1\r\nX-Endless: " + b"b" * 3000)
        response, waited = read_until_closed(sock, 5)
    assert status_of(response) == 431 and waited < 0.4  # not the header deadline
    assert health(server).status_code == 200


@pytest.mark.parametrize("http", PARSERS)
def test_headers_within_the_limit_are_served(start: Start, http: str) -> None:
    server = start(http)
    with connect(server) as sock:
        sock.sendall(head("GET", "/health", X_Fill="a" * 1800))
        response, _ = read_until_closed(sock, 5)
    assert status_of(response) == 200


@pytest.mark.parametrize("http", PARSERS)
def test_connections_past_the_cap_get_503_while_every_one_is_busy(start: Start, http: str) -> None:
    """Busy: headers in, the body still coming. Those hold their slots; a new one is refused."""
    server = start(http, max_client_connections=3, header_timeout_s=5.0)
    headers = {"Content-Type": "application/json", "Content-Length": "100"}
    held = [connect(server) for _ in range(3)]
    try:
        for sock in held:
            sock.sendall(head("POST", "/v1/chat/completions", **headers) + b'{"model": ')
        time.sleep(0.2)
        with connect(server) as extra:
            extra.sendall(head("GET", "/health"))
            response, _ = read_until_closed(extra, 5)
        assert status_of(response) == 503 and header_of(response, "retry-after") == "1"
        assert error_of(response)["code"] == "too_many_connections"
    finally:
        for sock in held:
            sock.close()
    time.sleep(0.1)
    assert health(server).status_code == 200


@pytest.mark.parametrize("http", PARSERS)
def test_at_the_cap_the_longest_waiting_connection_makes_room(start: Start, http: str) -> None:
    """Connections that sent nothing, or half a head, give their slot to a new one, oldest
    first; the connections after it keep theirs and are still served."""
    server = start(http, max_client_connections=3, header_timeout_s=5.0)
    held = []
    for _ in range(3):
        held.append(connect(server))
        time.sleep(0.05)
    held[0].sendall(b"GET /health HTTP/1.1\r\n")  # half a head
    try:
        time.sleep(0.1)
        assert health(server).status_code == 200
        response, _ = read_until_closed(held[0], 2)
        assert status_of(response) == 408  # it had sent part of a request
        held[1].sendall(head("GET", "/health"))
        assert status_of(held[1].recv(65536)) == 200
    finally:
        for sock in held:
            sock.close()


@pytest.mark.parametrize("http", PARSERS)
def test_slowloris_cannot_keep_health_out(start: Start, http: str) -> None:
    """200 half-sent requests against a cap of 50 (the measured case: 1,100 against 1,024):
    each new connection takes the slot of the oldest half-sent one, so /health answers
    throughout, long before the header deadline would have freed a slot. The measured case:
    SLOWLORIS_SOCKETS=1100 SLOWLORIS_CAP=1024 pytest -s -k slowloris (prints the figures)."""
    sockets = int(os.environ.get("SLOWLORIS_SOCKETS", "200"))
    cap = int(os.environ.get("SLOWLORIS_CAP", "50"))
    server = start(http, max_client_connections=cap, header_timeout_s=5.0)
    loris = []
    for _ in range(sockets):
        sock = connect(server)
        sock.sendall(b"POST /v1/chat/completions HTTP/1.1\r\nHost: proxy\r\n")
        loris.append(sock)
    try:
        started = time.monotonic()
        timings = []
        for _ in range(20):
            asked = time.monotonic()
            timings.append((health(server).status_code, time.monotonic() - asked))
        took = time.monotonic() - started
    finally:
        for sock in loris:
            sock.close()
    slowest_ms = max(seconds for _, seconds in timings) * 1000
    print(
        f"\n{sockets} half-sent requests, cap {cap} ({http}): /health {[s for s, _ in timings]}"
        f", slowest {slowest_ms:.0f} ms, 20 probes in {took:.2f} s"
    )
    assert [status for status, _ in timings] == [200] * 20
    assert took < 5.0


@pytest.mark.parametrize("http", PARSERS)
def test_a_late_body_gets_408_recorded_and_closed(
    start: Start, fake: FakeUpstream, tmp_path: Path, http: str
) -> None:
    server = start(http, header_timeout_s=5.0)
    headers = {"Content-Type": "application/json", "Content-Length": "100"}
    with connect(server) as sock:
        sock.sendall(head("POST", "/v1/chat/completions", **headers) + b'{"model": "m", ')
        response, waited = read_until_closed(sock, 5)
    assert status_of(response) == 408 and error_of(response)["code"] == "body_timeout"
    assert header_of(response, "connection") == "close" and waited <= 0.5 + MARGIN_S
    request_id = header_of(response, "x-request-id")
    server.app.state.proxy.records.writer.flush()  # type: ignore[attr-defined]
    with contextlib.closing(sqlite3.connect(tmp_path / "records.db")) as db:
        rows = db.execute(
            "SELECT status, error_code FROM requests WHERE request_id = ?", (request_id,)
        ).fetchall()
    assert rows == [(408, "body_timeout")]
    assert fake.requests == []
    fake.enqueue(completion("fine"))
    body = {"model": "m", "messages": [{"role": "user", "content": "hi"}]}
    url = f"http://{server.host}:{server.port}/v1/chat/completions"
    assert httpx.post(url, json=body, headers={"Authorization": KEY}).status_code == 200


def test_a_trickled_body_is_cut_at_the_deadline(start: Start) -> None:
    """Bytes that keep coming do not extend the body's deadline."""
    server = start(header_timeout_s=5.0)
    headers = {"Content-Type": "application/json", "Content-Length": "1000"}
    closed = threading.Event()
    with connect(server) as sock:
        sock.sendall(head("POST", "/v1/contexts", **headers))

        def trickle() -> None:
            with contextlib.suppress(OSError):
                while not closed.is_set():
                    sock.sendall(b" ")
                    time.sleep(0.05)

        thread = threading.Thread(target=trickle)
        thread.start()
        response, waited = read_until_closed(sock, 5)
        closed.set()
        thread.join()
    assert status_of(response) == 408 and waited <= 0.5 + MARGIN_S


def test_the_limits_follow_the_settings_not_uvicorn_defaults(start: Start) -> None:
    server = start(header_timeout_s=1.5)
    with connect(server) as sock:
        sock.sendall(b"GET /hea")
        response, waited = read_until_closed(sock, 5)
    assert status_of(response) == 408 and 1.4 <= waited <= 1.5 + MARGIN_S
    with contextlib.suppress(OSError), socket.create_connection((server.host, server.port)):
        pass


@pytest.mark.parametrize("http", PARSERS)
def test_a_slow_upstream_answer_is_not_cut_by_the_client_deadlines(
    start: Start, fake: FakeUpstream, http: str
) -> None:
    """The deadlines are the client's: once its request is in, the upstream takes its time."""
    server = start(http)
    fake.enqueue(json_reply(completion_body("slow"), delay_s=1.2))
    body = {"model": "m", "messages": [{"role": "user", "content": "hi"}]}
    url = f"http://{server.host}:{server.port}/v1/chat/completions"
    answer = httpx.post(url, json=body, headers={"Authorization": KEY}, timeout=10)
    assert answer.status_code == 200
    assert answer.json()["choices"][0]["message"]["content"] == "slow"


def test_serve_raises_the_file_limit_to_fit_the_connection_cap() -> None:
    """With Linux's usual soft limit of 1,024 files, a flood hit accept()'s EMFILE before
    the cap of 1,024 could answer 503. In a child: the limit is the process's."""
    script = (
        "import resource\n"
        "soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)\n"
        "resource.setrlimit(resource.RLIMIT_NOFILE, (100, hard))\n"
        "from router.proxy.server import raise_file_limit\n"
        "print(raise_file_limit(300), resource.getrlimit(resource.RLIMIT_NOFILE)[0], hard)\n"
    )
    root = Path(__file__).resolve().parents[3]
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True, cwd=root
    )
    returned, now, hard = (int(n) for n in done.stdout.split())
    expected = 300 + 256 if hard == resource.RLIM_INFINITY else min(300 + 256, hard)
    assert returned == now == expected


@pytest.mark.parametrize("http", PARSERS)
def test_the_rest_of_a_body_answered_early_is_not_taken_for_a_head(start: Start, http: str) -> None:
    """A 415 goes out before the body is read; the body that follows on the kept-alive
    connection (25 times the header limit) is dropped, and the next request is served."""
    server = start(http, header_timeout_s=5.0)
    headers = {"Content-Type": "text/plain", "Content-Length": "50000"}
    with connect(server) as sock:
        sock.sendall(head("POST", "/v1/chat/completions", **headers))
        time.sleep(0.2)
        refused = sock.recv(65536)
        assert status_of(refused) == 415
        sock.sendall(b"x" * 50000)
        time.sleep(0.1)
        sock.sendall(head("GET", "/health"))
        time.sleep(0.2)
        assert status_of(sock.recv(65536)) == 200
