"""A scriptable OpenAI-compatible HTTP server for tests.

It is a real socket on 127.0.0.1 so the real `openai` client (and later the
real proxy) talk to it exactly as they would to vLLM or llama.cpp: status
codes, headers, keep-alive, chunked SSE, cut connections and stalls all go
through the actual HTTP stack instead of a patched transport.

    with FakeUpstream() as fake:
        fake.enqueue(completion("hi"))
        OpenAIBackend(fake.url).chat(...)
        fake.requests[0].json["model"]

Replies are served first in, first out, whatever the path; when the queue is
empty `fallback` answers (by default a 418 that names the unscripted request,
so a test that forgot a reply fails loudly without being retried).
"""

from __future__ import annotations

import json
import queue
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Literal

Ending = Literal["done", "end", "eof", "cut", "stall"]


@dataclass(frozen=True)
class Reply:
    """One scripted answer. `events` switches to an SSE stream; `ending` says how it stops.

    ending: "done" sends `data: [DONE]` and a proper end; "end" a proper end without
    `[DONE]` (how Responses API streams end); "eof" closes the connection
    cleanly without [DONE]; "cut" drops the connection in the middle of the chunked
    body; "stall" stops sending and holds the connection open for `stall_s`.
    """

    status: int = 200
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    delay_s: float = 0.0
    events: tuple[bytes, ...] | None = None
    ending: Ending = "done"
    stall_s: float = 10.0


@dataclass(frozen=True)
class Recorded:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes

    @property
    def json(self) -> Any:
        return json.loads(self.body) if self.body else None


def json_reply(
    body: Any, status: int = 200, *, headers: dict[str, str] | None = None, delay_s: float = 0.0
) -> Reply:
    all_headers = {"Content-Type": "application/json", **(headers or {})}
    return Reply(status, json.dumps(body).encode(), all_headers, delay_s)


def raw_reply(body: bytes, status: int = 200, *, content_type: str = "application/json") -> Reply:
    """A body sent as is: garbage, truncated JSON, HTML error pages."""
    return Reply(status, body, {"Content-Type": content_type})


def error_reply(status: int, message: str, *, headers: dict[str, str] | None = None) -> Reply:
    body = {"error": {"message": message, "type": "invalid_request_error", "code": None}}
    return json_reply(body, status, headers=headers)


def usage_body(prompt: int, completion: int, cached: int | None = None) -> dict[str, Any]:
    usage: dict[str, Any] = {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
    }
    if cached is not None:
        usage["prompt_tokens_details"] = {"cached_tokens": cached}
    return usage


def completion_body(
    text: str,
    *,
    model: str = "fake-model",
    finish_reason: str = "stop",
    usage: dict[str, Any] | None = None,
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "id": "chatcmpl-fake",
        "object": "chat.completion",
        "created": 0,
        "model": model,
        "choices": [
            {
                "index": 0,
                "finish_reason": finish_reason,
                "message": {"role": "assistant", "content": text},
            }
        ],
    }
    if usage is not None:
        body["usage"] = usage
    return body


def completion(text: str, **kwargs: Any) -> Reply:
    return json_reply(completion_body(text, **kwargs))


def chunk_body(
    content: str | None = None,
    *,
    finish_reason: str | None = None,
    usage: dict[str, Any] | None = None,
    model: str = "fake-model",
    index: int = 0,
) -> dict[str, Any]:
    """A `chat.completion.chunk`; with only `usage` it is the include_usage final chunk."""
    choices = []
    if content is not None or finish_reason is not None:
        delta = {"content": content} if content is not None else {}
        choices = [{"index": index, "delta": delta, "finish_reason": finish_reason}]
    body: dict[str, Any] = {
        "id": "chatcmpl-fake",
        "object": "chat.completion.chunk",
        "created": 0,
        "model": model,
        "choices": choices,
    }
    if usage is not None:
        body["usage"] = usage
    return body


def sse_reply(
    chunks: Iterable[dict[str, Any] | bytes],
    *,
    ending: Ending = "done",
    stall_s: float = 10.0,
    delay_s: float = 0.0,
) -> Reply:
    """Each dict becomes one `data:` event; bytes are sent verbatim (for garbage events)."""
    events = tuple(
        c if isinstance(c, bytes) else f"data: {json.dumps(c)}\n\n".encode() for c in chunks
    )
    return Reply(200, b"", {"Content-Type": "text/event-stream"}, delay_s, events, ending, stall_s)


def stream_reply(
    pieces: Iterable[str],
    *,
    finish_reason: str = "stop",
    usage: dict[str, Any] | None = None,
    **kwargs: Any,
) -> Reply:
    """The usual shape: a role chunk, one chunk per piece, a finish chunk, a usage chunk."""
    chunks = [
        {
            **chunk_body(""),
            "choices": [
                {"index": 0, "delta": {"role": "assistant", "content": ""}, "finish_reason": None}
            ],
        }
    ]
    chunks += [chunk_body(p) for p in pieces]
    chunks.append(chunk_body(finish_reason=finish_reason))
    if usage is not None:
        chunks.append(chunk_body(usage=usage))
    return sse_reply(chunks, **kwargs)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    fake: FakeUpstream

    def handle_error(self, request: Any, client_address: Any) -> None:
        """Clients hanging up on a stalled or cut reply is the point of some tests, not noise."""


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        self._serve()

    def do_POST(self) -> None:
        self._serve()

    def _serve(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        fake = self.server.fake
        recorded = Recorded(self.command, self.path, dict(self.headers.items()), body)
        fake._record(recorded)
        reply = fake._next_reply(recorded)
        if reply.delay_s and fake._stopping.wait(reply.delay_s):
            return
        if reply.events is None:
            self._send_plain(reply)
        else:
            self._send_stream(reply)

    def _send_plain(self, reply: Reply) -> None:
        self.send_response(reply.status)
        for name, value in reply.headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(reply.body)))
        self.end_headers()
        self.wfile.write(reply.body)

    def _send_stream(self, reply: Reply) -> None:
        chunked = reply.ending != "eof"
        self.send_response(reply.status)
        for name, value in reply.headers.items():
            self.send_header(name, value)
        self.send_header(
            "Transfer-Encoding" if chunked else "Connection", "chunked" if chunked else "close"
        )
        self.end_headers()
        assert reply.events is not None
        for event in reply.events:
            self._write(event, chunked)
        self._finish_stream(reply, chunked)

    def _finish_stream(self, reply: Reply, chunked: bool) -> None:
        if reply.ending == "done":
            self._write(b"data: [DONE]\n\n", chunked)
        if reply.ending in ("done", "end"):
            self.wfile.write(b"0\r\n\r\n")
        elif reply.ending == "stall":
            self.server.fake._stopping.wait(reply.stall_s)
        self.close_connection = reply.ending not in ("done", "end")

    def _write(self, data: bytes, chunked: bool) -> None:
        self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data) if chunked else data)
        self.wfile.flush()


class FakeUpstream:
    """A live fake upstream; `url` ends in /v1 like the base URL of a real one."""

    def __init__(
        self, fallback: Reply | Callable[[Recorded], Reply] | None = None, *, port: int = 0
    ) -> None:
        self.fallback = fallback
        self.requests: list[Recorded] = []
        self._replies: queue.SimpleQueue[Reply] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._server = _Server(("127.0.0.1", port), _Handler)
        self._server.fake = self
        self._thread = threading.Thread(
            target=self._server.serve_forever, args=(0.01,), daemon=True
        )  # short poll: stop() returns at once

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}/v1"

    def enqueue(self, *replies: Reply) -> FakeUpstream:
        for reply in replies:
            self._replies.put(reply)
        return self

    def start(self) -> FakeUpstream:
        self._thread.start()
        return self

    def stop(self) -> None:
        """Wakes stalled handlers first so no thread outlives the test by seconds."""
        self._stopping.set()
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    def __enter__(self) -> FakeUpstream:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def _record(self, request: Recorded) -> None:
        with self._lock:
            self.requests.append(request)

    def _next_reply(self, request: Recorded) -> Reply:
        try:
            return self._replies.get_nowait()
        except queue.Empty:
            if callable(self.fallback):
                return self.fallback(request)
            if self.fallback is not None:
                return self.fallback
            message = f"fake upstream: no reply enqueued for {request.method} {request.path}"
            return error_reply(418, message)


def healthy(request: Recorded) -> Reply:
    """A fallback that answers like a working upstream: a model list, a completion, or a
    stream, as the request asks."""
    if request.method == "GET":
        return json_reply({"object": "list", "data": [{"id": "fake-model", "object": "model"}]})
    asked = request.json if request.body else {}
    if isinstance(asked, dict) and asked.get("stream"):
        return stream_reply(["ok"], usage=usage_body(5, 1))
    return completion("ok", usage=usage_body(5, 1))
