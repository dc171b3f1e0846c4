"""uvicorn's HTTP protocols with limits on clients: a header deadline, a header size, a cap.

uvicorn arms its keep-alive timer only after a response, and any byte cancels it, so a
client that opens a connection and sends half a request line holds it for ever (1,100
such sockets made `/health` unreachable). Its `limit_concurrency` counts tasks as well
as connections and is checked only once a request's headers are complete, which a
slowloris never reaches. So each connection here gets, from the moment it opens and
again after each response:

    header deadline   the next request's line and headers within `header_timeout_s`,
                      else 408 (if part of a request came) and close
    header size       the request line and headers within `max_header_bytes`, else
                      431 and close
    connection cap    a connection opened while `max_connections` are open takes the
                      slot of the one that has waited longest for a request's head
                      (closed as its deadline would close it); when every open one is
                      busy with a request, it is answered 503 + Retry-After as soon as
                      it sends, and closed

The body's deadline is the app's (`router.proxy.bodies`), so a late body is a 408 the
pipeline records like any failed request; the idle deadline is uvicorn's keep-alive.
"""

from __future__ import annotations

import asyncio
import http
from dataclasses import dataclass
from typing import Any

import h11
from uvicorn.protocols.http.h11_impl import H11Protocol
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from router.proxy.api_errors import ApiError
from router.settings import Settings


@dataclass(frozen=True)
class ClientLimits:
    header_timeout_s: float = 10.0
    idle_timeout_s: float = 5.0
    max_connections: int = 1024
    max_header_bytes: int = 16 * 1024

    @classmethod
    def from_settings(cls, settings: Settings) -> ClientLimits:
        return cls(
            header_timeout_s=settings.header_timeout_s,
            idle_timeout_s=settings.idle_timeout_s,
            max_connections=settings.max_client_connections,
            max_header_bytes=settings.max_header_bytes,
        )


def raw_error(error: ApiError) -> bytes:
    """An OpenAI-shaped error written straight to the socket, for a request no app sees."""
    body = error.body()
    head = [f"HTTP/1.1 {error.status} {http.HTTPStatus(error.status).phrase}"]
    head += [f"{name}: {value}" for name, value in error.headers.items()]
    head += ["content-type: application/json", f"content-length: {len(body)}"]
    head += ["connection: close", "", ""]
    return "\r\n".join(head).encode() + body


def header_timeout(limits: ClientLimits) -> ApiError:
    message = f"the request's headers did not arrive within {limits.header_timeout_s:g} s"
    return ApiError(408, message, code="header_timeout")


def headers_too_large(limits: ClientLimits) -> ApiError:
    message = f"the request line and headers are larger than {limits.max_header_bytes} bytes"
    return ApiError(431, message, code="headers_too_large")


def too_many_connections(limits: ClientLimits) -> ApiError:
    message = f"the proxy holds {limits.max_connections} client connections; retry shortly"
    headers = {"Retry-After": "1"}
    return ApiError(503, message, type="server_error", code="too_many_connections", headers=headers)


class Limited:
    """The limits over either uvicorn protocol; the subclasses below say when headers end."""

    limits: ClientLimits = ClientLimits()  # the per-server subclass of `protocol_for` sets it
    transport: asyncio.Transport
    connections: set[Any]
    cycle: Any
    loop: asyncio.AbstractEventLoop

    def connection_made(self, transport: asyncio.Transport) -> None:
        self._verdict: ApiError | None = None
        self._head_timer: asyncio.TimerHandle | None = None
        self._head_since = 0.0  # when this connection began waiting for a request's head
        self._head_bytes = 0  # of the head being read
        self._in_head = False
        full = len(self.connections) >= self.limits.max_connections
        self._over_cap = full and not self._make_room()
        super().connection_made(transport)  # type: ignore[misc]
        self._await_head()

    def _make_room(self) -> bool:
        """At the cap, the connection that has waited longest for a request's head (a
        slowloris, or an idle keep-alive) makes way, so half-sent requests cannot keep
        anyone out: only connections busy with a request hold their slot."""
        waiting = [
            c
            for c in self.connections
            if c._head_timer is not None and not c.transport.is_closing()
        ]
        if not waiting:
            return False
        min(waiting, key=lambda c: c._head_since)._head_late()
        return True

    def connection_lost(self, exc: Exception | None) -> None:
        self._stop_head_timer()
        super().connection_lost(exc)  # type: ignore[misc]

    def data_received(self, data: bytes) -> None:
        if self._over_cap:
            return self._answer(too_many_connections(self.limits))
        if self._verdict is not None or self.transport.is_closing():
            return None
        self._partial = True
        before = self.cycle
        super().data_received(data)  # type: ignore[misc]
        if self.cycle is not before:
            self._head_done()
        if self._verdict is not None:
            self._answer(self._verdict)
        return None

    def on_response_complete(self) -> None:
        """The next request's headers are due now, unless a pipelined one's are already in."""
        super().on_response_complete()  # type: ignore[misc]
        if not self.transport.is_closing() and self.cycle.response_complete:
            self._await_head()

    def _await_head(self) -> None:
        self._stop_head_timer()
        self._partial = False
        self._in_head = True
        self._head_bytes = 0
        self._head_since = self.loop.time()
        self._head_timer = self.loop.call_later(self.limits.header_timeout_s, self._head_late)

    def _head_done(self) -> None:
        self._in_head = False
        self._stop_head_timer()

    def _stop_head_timer(self) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None

    def _head_late(self) -> None:
        """Nothing came: closed quietly, as uvicorn closes an idle keep-alive; part of a
        request: a 408 first, which a waiting client reads. Also how a connection makes
        room for a new one at the cap."""
        self._stop_head_timer()
        if self.transport.is_closing():
            return
        if self._partial:
            self.transport.write(raw_error(header_timeout(self.limits)))
        self.transport.close()

    def _answer(self, error: ApiError) -> None:
        self._stop_head_timer()
        if not self.transport.is_closing():
            self.transport.write(raw_error(error))
            self.transport.close()


class LimitedHttpTools(Limited, HttpToolsProtocol):
    """Counts the request line and headers exactly, from httptools' callbacks, and refuses
    an oversized head before any app sees it (its body is then ignored, not parsed)."""

    def data_received(self, data: bytes) -> None:
        """A head that never ends calls no callback: its bytes are counted as they come."""
        super().data_received(data)
        if self._in_head and self._verdict is None and not self.transport.is_closing():
            self._head_bytes += len(data)
            if self._head_bytes > self.limits.max_header_bytes:
                self._answer(headers_too_large(self.limits))

    def on_message_begin(self) -> None:
        self._in_head = True
        self._head_bytes = self._exact = 0
        super().on_message_begin()

    def on_url(self, url: bytes) -> None:
        self._count(len(url))
        super().on_url(url)

    def on_header(self, name: bytes, value: bytes) -> None:
        self._count(len(name) + len(value) + 4)  # ": " and CRLF
        super().on_header(name, value)

    def on_headers_complete(self) -> None:
        self._in_head = False
        if self._verdict is None:
            super().on_headers_complete()

    def on_body(self, body: bytes) -> None:
        if self._verdict is None:
            super().on_body(body)

    def on_message_complete(self) -> None:
        if self._verdict is None:
            super().on_message_complete()

    def _count(self, size: int) -> None:
        self._exact += size
        if self._exact > self.limits.max_header_bytes:
            self._verdict = headers_too_large(self.limits)

    def _await_head(self) -> None:
        super()._await_head()
        # Bytes before the next message begins are the rest of a body the app answered
        # early (a 429, a 415): not a head, and not counted as one.
        self._in_head = False
        self._exact = 0


class LimitedH11(Limited, H11Protocol):
    """h11 has no per-header callbacks: the bytes up to the blank line that ends a head
    are counted before h11 sees them, and a new request cycle marks the head's end."""

    conn: h11.Connection

    def data_received(self, data: bytes) -> None:
        if self._counts_head():
            seen = self._tail + data
            end = seen.find(b"\r\n\r\n")
            size = self._head_bytes + (len(data) if end < 0 else end + 4 - len(self._tail))
            if size > self.limits.max_header_bytes:
                return self._answer(headers_too_large(self.limits))
            self._tail = seen[-3:]
        return super().data_received(data)

    def _await_head(self) -> None:
        self._tail = b""
        super()._await_head()

    def _counts_head(self) -> bool:
        """Only while h11 waits for a request: not in the rest of a body the app answered
        early (a 429, a 415), which h11 reads and drops."""
        idle = self.conn.their_state is h11.IDLE
        return idle and self._in_head and not self._over_cap and self._verdict is None


PROTOCOLS: dict[str, type[Limited]] = {"httptools": LimitedHttpTools, "h11": LimitedH11}


def protocol_for(limits: ClientLimits, http_impl: str) -> type[asyncio.Protocol]:
    """A subclass per server, so two servers in one process (tests) keep their own limits."""
    base = PROTOCOLS[http_impl]
    return type(f"{base.__name__}Server", (base,), {"limits": limits})
