"""Relaying an upstream chat completions SSE stream to the client, event by event.

On the way through, the relay parses each event, to keep a record (the usage
from the chunk that carries it, whether the answer finished) and to stop an
event that is not JSON from reaching a client's SDK, which would crash on it.

If the proxy asked the upstream for usage on the client's behalf
(`stream_options.include_usage`, for its records), the usage-only chunk is
dropped, so the client receives exactly the stream it asked for. Tokens the
proxy spent before this stream for the same request (a checked answer that
failed its check) are added to the usage the chunk reports.

A stream that breaks after its first byte cannot change its HTTP status any
more. It ends with one OpenAI-style error event and then `data: [DONE]`:

    data: {"error": {"message": "...", "type": "upstream_error", "param": null, "code": "..."}}

    data: [DONE]

The openai SDK raises `APIError` on such an event, so a client never takes a
half answer for a whole one. The same happens when the upstream ends without
a finish_reason.
"""

from __future__ import annotations

import json
from collections.abc import AsyncGenerator, Callable
from typing import Any

from router.errors import UpstreamBadResponse, UpstreamError
from router.proxy.api_errors import ApiError, from_upstream, sse_error_event
from router.proxy.formats.chat_usage import add_usage
from router.upstream import DONE_EVENT, UpstreamStream

Settle = Callable[[int, str | None, dict[str, Any] | None], None]


class StreamRelay:
    """`before_done(status, error code, usage)` runs once, just before the final `[DONE]`
    leaves: a record journaled then survives a crash between the last byte and the
    stream's end. A client that leaves before `[DONE]` is settled by the caller (499)."""

    def __init__(
        self,
        upstream: UpstreamStream,
        *,
        strip_usage: bool = False,
        before_done: Settle | None = None,
        spent_before: dict[str, Any] | None = None,
    ) -> None:
        self.upstream = upstream
        self.strip_usage = strip_usage
        self.spent_before = spent_before
        self.before_done = before_done
        self.settled = False  # before_done ran
        self.usage: dict[str, Any] | None = None
        self.error: ApiError | None = None
        self.finished = False  # a finish_reason went by
        self.done = False  # the upstream's [DONE] went by
        self.complete = False  # the client was sent the whole stream, [DONE] included

    async def events(self) -> AsyncGenerator[bytes, None]:
        try:
            async for event in self.upstream.events():
                kept = self._keep(event)
                if kept is not None:
                    if self.done:
                        self._settle()
                    yield kept
        except UpstreamError as exc:
            self.error = from_upstream(exc)
            yield sse_error_event(self.error)
        if not self.done:
            if self.error is None and not self.finished:
                self.error = _incomplete()
                yield sse_error_event(self.error)
            self._settle()
            yield DONE_EVENT
        self.complete = True

    def outcome(self) -> tuple[int, str | None]:
        """(status, error code) for the record; 499 when the client left first."""
        if self.error is not None:
            return self.error.status, self.error.code
        return (200, None) if self.complete else (499, "client_closed")

    def _settle(self) -> None:
        if self.before_done is not None and not self.settled:
            self.settled = True
            status, code = (self.error.status, self.error.code) if self.error else (200, None)
            self.before_done(status, code, self.usage)

    async def aclose(self) -> None:
        await self.upstream.aclose()

    def _keep(self, event: bytes) -> bytes | None:
        """The event to send on, or None to drop it. Every data event is parsed (a few
        microseconds against the tens of milliseconds a token takes): an event the client's
        SDK could not parse ends the stream with an error event instead of reaching the client."""
        payload = _data(event)
        if not payload:  # a comment or keep-alive line
            return event
        if payload == b"[DONE]":
            self.done = True
            return event
        try:
            chunk = json.loads(payload)
        except ValueError:
            chunk = None
        if not isinstance(chunk, dict):
            text = payload[:80].decode("utf-8", "replace")
            raise UpstreamBadResponse(f"the upstream sent an event that is not JSON: {text}")
        if not self.finished and any(
            isinstance(c, dict) and c.get("finish_reason") for c in chunk.get("choices") or ()
        ):
            self.finished = True
        return self._inspect(chunk, event)

    def _inspect(self, chunk: dict[str, Any], event: bytes) -> bytes | None:
        error = chunk.get("error")
        if isinstance(error, dict):  # the upstream's own error event, relayed as it is
            self.error = ApiError(
                502, str(error.get("message")), type="upstream_error", code="upstream_stream_error"
            )
        usage = chunk.get("usage")
        if not isinstance(usage, dict):
            return event
        if self.strip_usage and not chunk.get("choices"):
            self.usage = add_usage(usage, self.spent_before) if self.spent_before else usage
            return None
        if self.spent_before:
            usage = chunk["usage"] = add_usage(usage, self.spent_before)
            event = b"data: " + json.dumps(chunk).encode() + b"\n\n"
        self.usage = usage
        return event


def _incomplete() -> ApiError:
    return ApiError(
        502,
        "the upstream stream ended before its answer was complete",
        type="upstream_error",
        code="upstream_bad_response",
    )


def _data(event: bytes) -> bytes:
    """The payload of an event's `data:` lines (joined as SSE joins them)."""
    lines = [line[5:].strip() for line in event.splitlines() if line.startswith(b"data:")]
    return b"\n".join(lines)
