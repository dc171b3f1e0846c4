"""Two upstreams that take their time, on real sockets, for the tests of waiting.

    HangingUpstream  reads each request and never answers; it notices (and times) the
                     moment the caller closes the connection, the way llama.cpp does
    OneSlotUpstream  serves one request at a time, like a local model with its slots
                     taken; its streams (the sleep-time calls) trickle one event per
                     `interval_s` and stop, freeing the slot, when the caller closes them

and the proxy in front of them (`start_proxy`), with its records read back (`records`).
"""

from __future__ import annotations

import contextlib
import json
import socket
import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from fake_upstream import chunk_body, completion_body, usage_body
from proxy_fakes import config_for

from router.local_server import free_port
from router.proxy.app import create_app
from router.proxy.config import ProxyConfig
from router.proxy.server import ServerThread
from router.store import open_store

KEY = "sk-waiting-test"
AUTH = {"Authorization": f"Bearer {KEY}"}


@contextmanager
def start_proxy(
    tmp_path: Path, upstream_url: str, *, http: str = "httptools", **settings: Any
) -> Iterator[ServerThread]:
    """The real app under uvicorn (its `http` parser) in front of `upstream_url`; its
    records go to `tmp_path / "records.db"` (see `records`)."""
    settings.setdefault("sleep_enabled", False)
    config = ProxyConfig.from_settings(
        config_for(tmp_path).settings.replace(upstream_url=upstream_url, **settings)
    )
    store = open_store(tmp_path / "records.db")
    try:
        app = create_app(config, store=store)
        server = ServerThread(app, free_port(), http=http)
        server.app = app  # type: ignore[attr-defined]
        with server:
            yield server
    finally:
        store.close()


def records(server: ServerThread, tmp_path: Path) -> list[tuple[int, str | None]]:
    """(status, error code) of every request recorded so far, in order."""
    server.app.state.proxy.records.writer.flush()  # type: ignore[attr-defined]
    with contextlib.closing(sqlite3.connect(tmp_path / "records.db")) as db:
        return db.execute("SELECT status, error_code FROM requests ORDER BY rowid").fetchall()


class HangingUpstream:
    """`requests`: how many arrived; `closed_after`: seconds each waited before its caller
    closed the connection (in arrival order)."""

    def __init__(self) -> None:
        self.requests = 0
        self.closed_after: list[float] = []
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._listener.settimeout(0.05)
        self._thread = threading.Thread(target=self._accept, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._listener.getsockname()[1]}/v1"

    def wait_closed(self, count: int = 1, timeout_s: float = 5.0) -> bool:
        deadline = time.monotonic() + timeout_s
        while len(self.closed_after) < count and time.monotonic() < deadline:
            time.sleep(0.01)
        return len(self.closed_after) >= count

    def __enter__(self) -> HangingUpstream:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stopping.set()
        self._thread.join(timeout=5)
        self._listener.close()

    def _accept(self) -> None:
        while not self._stopping.is_set():
            try:
                connection, _ = self._listener.accept()
            except TimeoutError:
                continue
            threading.Thread(target=self._hang, args=(connection,), daemon=True).start()

    def _hang(self, connection: socket.socket) -> None:
        with connection:
            connection.settimeout(0.05)
            received = b""
            while b"\r\n\r\n" not in received:  # the head; the body may follow, it is not read
                received += self._recv(connection) or b""
            with self._lock:
                self.requests += 1
            started = time.monotonic()
            while not self._stopping.is_set():
                if self._recv(connection) == b"":  # EOF: the caller closed it
                    with self._lock:
                        self.closed_after.append(time.monotonic() - started)
                    return

    @staticmethod
    def _recv(connection: socket.socket) -> bytes | None:
        try:
            return connection.recv(65536)
        except TimeoutError:
            return None
        except OSError:
            return b""


class OneSlotUpstream:
    """`streams_started` / `streams_cut` / `streams_finished` count the sleep-time calls;
    `answers` the plain completions (the user requests)."""

    def __init__(self, *, events: int = 40, interval_s: float = 0.05) -> None:
        self.events = events
        self.interval_s = interval_s
        self.slot = threading.Lock()
        self.streams_started = 0
        self.streams_cut = 0
        self.streams_finished = 0
        self.answers = 0
        self.streaming = threading.Event()  # set while a stream holds the slot
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _handler_for(self))
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.01,))

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}/v1"

    def __enter__(self) -> OneSlotUpstream:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    def stream_events(self) -> Iterator[bytes]:
        yield _event(chunk_body(""))
        for _ in range(self.events):
            time.sleep(self.interval_s)
            yield _event(chunk_body("- Eggs left each day: 16 - 3 - 4 = 9\n"))
        yield _event(chunk_body(finish_reason="stop"))
        yield _event(chunk_body(usage=usage_body(100, self.events)))
        yield b"data: [DONE]\n\n"

    @contextmanager
    def holding_slot(self) -> Iterator[None]:
        with self.slot:
            yield


def _event(body: dict[str, Any]) -> bytes:
    return f"data: {json.dumps(body)}\n\n".encode()


def _handler_for(upstream: OneSlotUpstream) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        disable_nagle_algorithm = True  # else a head and body in two writes wait 40 ms

        def log_message(self, format: str, *args: Any) -> None:
            pass

        def do_GET(self) -> None:
            self._json({"object": "list", "data": [{"id": "fake-model", "object": "model"}]})

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = json.loads(self.rfile.read(length) or b"{}")
            with upstream.holding_slot():
                if body.get("stream"):
                    self._stream()
                else:
                    upstream.answers += 1
                    self._json(completion_body("9", usage=usage_body(5, 1)))

        def _json(self, body: dict[str, Any]) -> None:
            data = json.dumps(body).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def _stream(self) -> None:
            upstream.streams_started += 1
            upstream.streaming.set()
            self.send_response(200)
            self.send_header("Content-Type", "text/event-stream")
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            try:
                for event in upstream.stream_events():
                    self.wfile.write(b"%x\r\n%s\r\n" % (len(event), event))
                    self.wfile.flush()
                self.wfile.write(b"0\r\n\r\n")
                upstream.streams_finished += 1
            except OSError:  # the caller closed the stream: stop generating, free the slot
                upstream.streams_cut += 1
                self.close_connection = True
            finally:
                upstream.streaming.clear()

    return Handler
