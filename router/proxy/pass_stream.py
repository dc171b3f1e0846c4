"""A passed-through stream (`/v1/responses`): its events relayed as they come, metered.

The Responses API streams typed events (`event: ...` and `data: {...}`) and ends
without `data: [DONE]`; its usage is in the last one, `response.completed`. Events go
to the client as the upstream sent them; only one carrying a usage is parsed. Like the
chat relay, the cleanup is in `__call__`, which runs however the stream ends, the
client leaving first included (recorded as 499).
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable
from typing import TYPE_CHECKING, Any

from router.errors import UpstreamError
from router.proxy.api_errors import from_upstream
from router.proxy.streaming import SettledStream

if TYPE_CHECKING:
    from router.proxy.passthrough import PassCall

CLIENT_CLOSED = (499, "client_closed")


class PassStream(SettledStream):
    def __init__(self, call: PassCall, upstream: Any, *, on_end: Callable[[], None]) -> None:
        super().__init__(self._relay(upstream), upstream, call.headers())
        self._call = call
        self._on_end = on_end
        self.usage: Any = None
        self.outcome: tuple[int, str | None] | None = None

    def settle(self) -> None:
        self._on_end()
        self.on_close()
        status, code = self.outcome or CLIENT_CLOSED
        self._call.finish(status, code, self.usage)

    async def _relay(self, upstream: Any) -> AsyncIterator[bytes]:
        try:
            async for event in upstream.events():
                if b'"usage"' in event:
                    self.usage = usage_of(event) or self.usage
                yield event
        except UpstreamError as exc:  # after the first byte: an error event ends the stream
            error = from_upstream(exc)
            self.outcome = (error.status, error.code)
            yield b"event: error\ndata: " + _error_data(error.code, error.message) + b"\n\n"
            return
        self.outcome = (200, None)


def usage_of(event: bytes) -> dict[str, Any] | None:
    """The usage of a `response.completed` event (under "response"), or of a bare one."""
    for line in event.splitlines():
        if line.startswith(b"data:"):
            try:
                data = json.loads(line[5:])
            except ValueError:
                return None
            if not isinstance(data, dict):
                return None
            inner = data.get("response")
            usage = (inner if isinstance(inner, dict) else data).get("usage")
            return usage if isinstance(usage, dict) else None
    return None


def _error_data(code: str | None, message: str) -> bytes:
    """The Responses API's error event: {"type": "error", "code", "message", "param"}."""
    return json.dumps({"type": "error", "code": code, "message": message, "param": None}).encode()
