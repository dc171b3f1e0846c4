"""The aiohttp Forwarder against a real (fake) HTTP upstream on 127.0.0.1.

`TestForwarderContract` runs the shared upstream contract; the tests below it
cover what only a pass-through does: bytes relayed as they are, SSE split into
whole events. The last test keeps the openai SDK off the proxy's hot path.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from collections.abc import Coroutine, Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest
from deadline_contract import DeadlineContract
from fake_upstream import FakeUpstream, completion, sse_reply, stream_reply, usage_body
from upstream_contract import EXACT, OpenUpstream, UpstreamContract

from router.errors import UpstreamBadResponse
from router.upstream import Forwarder, RetryPolicy, UpstreamStream

T = TypeVar("T")
BODY = b'{"model": "m", "messages": [{"role": "user", "content": "hi"}]}'
ROOT = Path(__file__).resolve().parents[3]


class HttpUpstream:
    """A Forwarder driven from synchronous tests: one event loop for its whole life, since
    its aiohttp session belongs to the loop that opened it."""

    def __init__(
        self, url: str, *, retry: RetryPolicy, timeout_s: float, api_key: str | None = None
    ) -> None:
        self.waits: list[float] = []
        self._loop = asyncio.new_event_loop()
        self.forwarder = Forwarder(
            url, api_key, timeout_s=timeout_s, retry=retry, sleep=self._record
        )

    def run(self, call: Coroutine[Any, Any, T]) -> T:
        return self._loop.run_until_complete(call)

    def complete(
        self, body: dict[str, Any], *, deadline: float | None = None
    ) -> tuple[int, dict[str, Any]]:
        sent = json.dumps(body).encode()
        answer = self.run(self.forwarder.post("/chat/completions", sent, deadline=deadline))
        return answer.status, answer.data

    def stream_text(self, body: dict[str, Any], *, deadline: float | None = None) -> list[str]:
        sent = json.dumps({**body, "stream": True}).encode()
        events = self.run(self.events(sent, deadline=deadline))
        return [text for text in map(_delta_text, events) if text]

    def models(self) -> list[str]:
        return self.run(self.forwarder.models())

    def close(self) -> None:
        self.run(self.forwarder.aclose())
        self._loop.close()

    async def events(self, body: bytes = BODY, *, deadline: float | None = None) -> list[bytes]:
        stream = await self.forwarder.open_stream("/chat/completions", body, deadline=deadline)
        try:
            return [event async for event in stream.events()]
        finally:
            await stream.aclose()

    async def _record(self, seconds: float) -> None:
        self.waits.append(seconds)


def _delta_text(event: bytes) -> str:
    data = event.removeprefix(b"data: ").strip()
    if data == b"[DONE]":
        return ""
    choices = json.loads(data).get("choices") or [{}]
    return choices[0].get("delta", {}).get("content") or ""


class TestForwarderContract(UpstreamContract, DeadlineContract):
    @pytest.fixture
    def open_upstream(self) -> OpenUpstream:
        return HttpUpstream


@pytest.fixture
def upstream(fake: FakeUpstream) -> Iterator[HttpUpstream]:
    backend = HttpUpstream(fake.url, retry=EXACT, timeout_s=0.5, api_key="up-key")
    yield backend
    backend.close()


def test_post_relays_bytes_as_sent_and_answered(upstream: HttpUpstream, fake: FakeUpstream) -> None:
    fake.enqueue(completion("hi", usage=usage_body(3, 1)))
    answer = upstream.run(upstream.forwarder.post("/chat/completions", BODY))
    assert answer.data["usage"]["prompt_tokens"] == 3 and b'"hi"' in answer.content
    assert fake.requests[0].headers["Authorization"] == "Bearer up-key"
    assert fake.requests[0].body == BODY and upstream.waits == []


def test_stream_events_arrive_whole(upstream: HttpUpstream, fake: FakeUpstream) -> None:
    fake.enqueue(stream_reply(["a", "b"], usage=usage_body(2, 2)))
    events = upstream.run(upstream.events())
    assert len(events) == 6 and events[-1] == b"data: [DONE]\n\n"
    assert all(event.endswith(b"\n\n") and event.startswith(b"data: ") for event in events)


def test_stream_cut_midway_keeps_what_arrived(upstream: HttpUpstream, fake: FakeUpstream) -> None:
    fake.enqueue(stream_reply(["a", "b"], ending="cut"))

    async def partial() -> list[bytes]:
        stream: UpstreamStream = await upstream.forwarder.open_stream("/chat/completions", BODY)
        seen = []
        try:
            async for event in stream.events():
                seen.append(event)
        except UpstreamBadResponse:
            return seen
        finally:
            await stream.aclose()
        raise AssertionError("the cut went unnoticed")

    seen = upstream.run(partial())
    assert 1 <= len(seen) <= 4 and upstream.waits == []  # aiohttp drops its buffer at a cut


def test_crlf_events_and_a_done_without_blank_line(
    upstream: HttpUpstream, fake: FakeUpstream
) -> None:
    fake.enqueue(sse_reply([b'data: {"a": 1}\r\n\r\n', b"data: [DONE]"], ending="eof"))
    assert upstream.run(upstream.events()) == [b'data: {"a": 1}\n\n', b"data: [DONE]\n\n"]


@pytest.mark.parametrize(
    ("module", "absent"),
    [
        ("router.upstream.http", "openai"),
        ("router.upstream", "openai"),
        ("router.upstream", "aiohttp"),
    ],
)
def test_import_loads_no_other_client(module: str, absent: str) -> None:
    """A fresh interpreter, since this one has loaded both clients already. (Not the
    reverse for sdk.py: the openai SDK itself loads aiohttp when it is installed.)"""
    check = f"import {module}, sys; assert {absent!r} not in sys.modules, 'loaded {absent}'"
    done = subprocess.run([sys.executable, "-c", check], cwd=ROOT, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
