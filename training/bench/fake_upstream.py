"""The fake upstream of the proxy benchmarks: bare asyncio HTTP, one fixed completion.

Its own process (`python -m training.bench.fake_upstream --port N --delay-ms D`), so
the proxy and the load generator measured beside it never share its event loop. It
answers in the given mean time, 0.5-1.5 times it at random, and writes the delay into
the completion's id, so a client can subtract each request's own delay.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import importlib.util
import random
import re
import sys

COMPLETION = (
    b'{"id": "chatcmpl-bench-%d", "object": "chat.completion", "created": 0, "model": "bench", '
    b'"choices": [{"index": 0, "finish_reason": "stop", "message": {"role": "assistant", '
    b'"content": "Paris is the capital of France."}}], '
    b'"usage": {"prompt_tokens": 31, "completion_tokens": 8, "total_tokens": 39}}'
)
MODELS = b'{"object": "list", "data": [{"id": "bench", "object": "model"}]}'
ANSWER = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s"
DELAY = re.compile(rb"chatcmpl-bench-(\d+)")
STREAMED = re.compile(rb'"stream":\s*true')
# A streamed answer (sleep-time passes stream, so that a user request can cut them short):
# its text, then a finish and the usage, then [DONE]; closed after, as a stream's end.
STREAM_HEAD = b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nConnection: close\r\n\r\n"
STREAM_EVENTS = [
    b'data: {"id": "s", "object": "chat.completion.chunk", "created": 0, "model": "bench", '
    b'"choices": [{"index": 0, "delta": {"content": "NOTES:\\n- Paris is the capital of '
    b'France.\\nQUESTIONS:\\nQ: What is the capital?\\nA: 1"}, "finish_reason": null}]}\n\n',
    b'data: {"id": "s", "object": "chat.completion.chunk", "created": 0, "model": "bench", '
    b'"choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]}\n\n',
    b'data: {"id": "s", "object": "chat.completion.chunk", "created": 0, "model": "bench", '
    b'"choices": [], "usage": {"prompt_tokens": 120, "completion_tokens": 20, '
    b'"total_tokens": 140}}\n\n',
    b"data: [DONE]\n\n",
]


class _UpstreamProtocol(asyncio.Protocol):
    """Keep-alive HTTP/1.1 with Content-Length bodies: all any OpenAI client sends."""

    delay_s = 0.0  # the mean time to answer, set once per process

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport: asyncio.Transport = transport  # type: ignore[assignment]
        self.buffer = b""

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        while (end := self.buffer.find(b"\r\n\r\n")) >= 0:
            total = end + 4 + content_length(self.buffer[:end])
            if len(self.buffer) < total:
                return
            path = self.buffer.split(b" ", 2)[1]
            streamed = STREAMED.search(self.buffer, end, total) is not None
            self.buffer = self.buffer[total:]
            if path.endswith(b"/models"):
                self._answer(MODELS)
            elif streamed:
                self.transport.write(STREAM_HEAD + b"".join(STREAM_EVENTS))
                self.transport.close()
            else:
                self._complete(self.delay_s * random.uniform(0.5, 1.5) if self.delay_s else 0.0)

    def _complete(self, delay_s: float) -> None:
        body = COMPLETION % int(delay_s * 1e6)
        if delay_s:
            asyncio.get_running_loop().call_later(delay_s, self._answer, body)
        else:
            self._answer(body)

    def _answer(self, body: bytes) -> None:
        if not self.transport.is_closing():
            self.transport.write(ANSWER % (len(body), body))


def content_length(head: bytes) -> int:
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            return int(value)
    return 0


async def serve_upstream(port: int, delay_ms: float) -> None:
    _UpstreamProtocol.delay_s = delay_ms / 1000.0
    loop = asyncio.get_running_loop()
    server = await loop.create_server(_UpstreamProtocol, "127.0.0.1", port, backlog=4096)
    async with server:
        await server.serve_forever()


def new_loop() -> asyncio.AbstractEventLoop:
    uvloop = importlib.util.find_spec("uvloop") and importlib.import_module("uvloop")
    return uvloop.new_event_loop() if uvloop else asyncio.new_event_loop()


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m training.bench.fake_upstream")
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--delay-ms", type=float, default=0.0, help="mean time to answer")
    args = p.parse_args(argv)
    new_loop().run_until_complete(serve_upstream(args.port, args.delay_ms))
    return 0


if __name__ == "__main__":
    sys.exit(main())
