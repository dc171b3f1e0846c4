"""The proxy's pass-through to the upstream: raw JSON bytes over one pooled aiohttp session.

`sdk.OpenAIBackend` parses every answer into objects, which is right for offline
work and too slow for a proxy that should add about a millisecond: here request
bodies go out as the bytes the proxy built, answers come back as bytes plus the
parsed JSON the proxy needs for its records.

Why aiohttp and not httpx: measured here (2 cores, 32 concurrent clients, a
bare Starlette app forwarding to an instant upstream), httpx.AsyncClient
topped out near 400 requests/s with a 60 ms median, aiohttp near 4,000-7,000
with 4-7 ms; httpx's pool and anyio layers cost more than the whole proxy
(a known issue: encode/httpx#3215). This module is the only one that imports
aiohttp, so the client stays replaceable; it imports nothing of openai, so the
hot path does not load the SDK.

Retries and translation are `retry`'s, shared with the SDK client: aiohttp
errors become `retry.transport_error` (TimeoutError: 504, any other
aiohttp.ClientError or OSError: 502, both retried), statuses go through
`retry.status_error`, and a body that is not a JSON object is UpstreamBadResponse.

Every call has one deadline (`deadline=`, a `time.monotonic()` reading; None: now +
`timeout_s`) for all its tries and waits: each try runs under `asyncio.timeout` of
the time left (`retry.Budget`), so a hung upstream is asked once, not once per retry.
A caller that is cancelled (its client left) cancels the try in flight, and aiohttp
then closes that connection, which is how the upstream learns nobody waits.

Streams are retried only until their first SSE event has arrived, that is
before the proxy relays a single byte; the deadline bounds that wait, and after
it each stall is bounded by `timeout_s`. After that an error cannot become an
HTTP status any more: `UpstreamStream.events()` raises UpstreamTimeout (a stall
past the read timeout) or UpstreamBadResponse (a cut), and the proxy's relay
ends the client's stream with an SSE error event and `data: [DONE]`.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

import aiohttp
import yarl

from router.errors import (
    UpstreamBadResponse,
    UpstreamConnectionError,
    UpstreamError,
    UpstreamServerError,
    UpstreamTimeout,
)
from router.upstream.retry import (
    DEFAULT_RETRY,
    Budget,
    RetryPolicy,
    connection_failure,
    retry_after_s,
    seconds,
    status_error,
    transport_error,
)

T = TypeVar("T")
_NETWORK = (aiohttp.ClientError, OSError)  # OSError includes TimeoutError
DONE_EVENT = b"data: [DONE]\n\n"


@dataclass(frozen=True)
class Forwarded:
    """An upstream answer: the bytes to relay as they are, and their parsed JSON."""

    status: int
    content: bytes
    data: dict[str, Any]


class _Attempt(Exception):
    """One failed try: the error to raise if it was the last, and the wait the upstream asked."""

    def __init__(self, error: UpstreamError, retry_after: float | None = None) -> None:
        super().__init__(str(error))
        self.error = error
        self.retry_after = retry_after


class Forwarder:
    """One session, one connection pool, shared by every request of the proxy.

    The session is opened on first use, inside the event loop that will use it."""

    def __init__(
        self,
        base_url: str,
        api_key: str | None = None,
        *,
        timeout_s: float = 120.0,
        retry: RetryPolicy = DEFAULT_RETRY,
        max_connections: int = 512,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.timeout_s = timeout_s
        self.retry = retry
        self.max_connections = max_connections
        self._sleep = sleep
        self._headers = {"Content-Type": "application/json"}
        if api_key:
            self._headers["Authorization"] = f"Bearer {api_key}"
        # sock_read bounds each wait for data: the answer's start, and every stall in a stream.
        self._timeout = aiohttp.ClientTimeout(
            total=None, sock_connect=min(timeout_s, 10.0), sock_read=timeout_s
        )
        self._session: aiohttp.ClientSession | None = None
        self._urls: dict[str, yarl.URL] = {}

    async def post(self, path: str, body: bytes, *, deadline: float | None = None) -> Forwarded:
        """`deadline`: a `time.monotonic()` reading that bounds every try and wait together."""
        return await self._with_retries(lambda: self._json("POST", path, body), deadline)

    async def get(self, path: str, *, deadline: float | None = None) -> Forwarded:
        return await self._with_retries(lambda: self._json("GET", path, None), deadline)

    async def open_stream(
        self, path: str, body: bytes, *, deadline: float | None = None
    ) -> UpstreamStream:
        """Returns once the first event has arrived, by the deadline; close the stream to
        release the connection."""
        return await self._with_retries(lambda: self._stream(path, body), deadline)

    async def models(self) -> list[str]:
        data = (await self.get("/models")).data.get("data")
        if not isinstance(data, list):
            raise UpstreamBadResponse("upstream model list has no data")
        return [m["id"] for m in data if isinstance(m, dict) and isinstance(m.get("id"), str)]

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    def _open(self) -> aiohttp.ClientSession:
        if self._session is None:
            connector = aiohttp.TCPConnector(limit=self.max_connections, ttl_dns_cache=300)
            self._session = aiohttp.ClientSession(
                connector=connector, headers=self._headers, timeout=self._timeout
            )
        return self._session

    def _url(self, path: str) -> yarl.URL:
        """Parsed once per path: parsing a URL string costs more than the rest of a call here."""
        url = self._urls.get(path)
        if url is None:
            url = self._urls[path] = yarl.URL(self.base_url + path)
        return url

    async def _json(self, method: str, path: str, body: bytes | None) -> Forwarded:
        try:
            async with self._open().request(method, self._url(path), data=body) as response:
                content = await response.read()
        except _NETWORK as exc:
            raise _Attempt(self._network_error(exc)) from exc
        if response.status >= 300:
            raise _status_error(response.status, response.headers, content)
        return Forwarded(response.status, content, _json_object(content))

    async def _stream(self, path: str, body: bytes) -> UpstreamStream:
        try:
            response = await self._open().post(self._url(path), data=body)
        except _NETWORK as exc:
            raise _Attempt(self._network_error(exc)) from exc
        try:
            if response.status >= 300:
                raise _status_error(
                    response.status, response.headers, await _read_quietly(response)
                )
            stream = UpstreamStream(response, self.timeout_s)
            await stream.prime()
            return stream
        except BaseException:
            response.close()
            raise

    async def _with_retries(self, call: Callable[[], Awaitable[T]], deadline: float | None) -> T:
        if deadline is None:
            deadline = time.monotonic() + self.timeout_s
        budget = Budget(self.retry, deadline)
        while True:
            left = budget.left_s()
            if left <= 0:
                raise budget.timed_out()
            try:
                async with asyncio.timeout(left):
                    return await call()
            except _Attempt as failed:
                error, retry_after, cause = failed.error, failed.retry_after, failed.__cause__
            except TimeoutError as exc:  # the deadline's, not aiohttp's (that is an _Attempt)
                error, retry_after, cause = budget.timed_out(), None, exc
            wait = budget.wait_s(error, retry_after)
            if wait is None:
                raise error from cause
            await self._sleep(wait)

    def _network_error(self, exc: BaseException) -> UpstreamError:
        return _network_error(exc, self.timeout_s)


class UpstreamStream:
    """An SSE response split into whole events (each ends with a blank line)."""

    def __init__(self, response: aiohttp.ClientResponse, stall_s: float | None = None) -> None:
        self.response = response
        self.stall_s = stall_s  # the read timeout, for the message of a stall
        self.events_read = 0
        self._chunks = response.content.iter_any()
        self._buffer = b""
        self._ready: list[bytes] = []

    async def prime(self) -> None:
        """Reads until one whole event is in; errors here are still retried as a failed try."""
        try:
            while not self._ready:
                chunk = await anext(self._chunks, None)
                if chunk is None:
                    raise _Attempt(self._no_events())
                self._ready = self._split(chunk)
        except _NETWORK as exc:
            raise _Attempt(_network_error(exc, self.stall_s)) from exc

    async def events(self) -> AsyncIterator[bytes]:
        ready, self._ready = self._ready, []
        for event in ready:
            yield self._count(event)
        try:
            async for chunk in self._chunks:
                for event in self._split(chunk):
                    yield self._count(event)
        except TimeoutError as exc:
            stalled = f" for {seconds(self.stall_s)} s" if self.stall_s is not None else ""
            message = f"the upstream stalled{stalled} in the middle of a stream"
            raise UpstreamTimeout(message) from exc
        except _NETWORK as exc:
            message = f"the upstream stream was cut after {self.events_read} events"
            raise UpstreamBadResponse(f"{message} ({_cut_reason(exc)})") from exc
        if self._buffer.strip() == DONE_EVENT.strip():  # a last event without its blank line
            yield self._count(DONE_EVENT)

    async def aclose(self) -> None:
        """Releasing a finished response keeps its connection; closing a cut one drops it."""
        if self.response.content.at_eof():
            self.response.release()
        else:
            self.response.close()

    def _split(self, chunk: bytes) -> list[bytes]:
        buffer = self._buffer + chunk
        if b"\r" in buffer:
            buffer = buffer.replace(b"\r\n", b"\n")
        *events, self._buffer = buffer.split(b"\n\n")
        return [event + b"\n\n" for event in events if event.strip()]

    def _count(self, event: bytes) -> bytes:
        self.events_read += 1
        return event

    def _no_events(self) -> UpstreamError:
        """An upstream that answered a stream request with plain JSON: an error, or no stream."""
        body = self._buffer.strip()
        try:
            error = json.loads(body).get("error")
        except (ValueError, AttributeError):
            error = None
        if isinstance(error, dict) and isinstance(error.get("message"), str):
            return UpstreamServerError(f"upstream stream failed: {error['message']}")
        text = body[:200].decode("utf-8", "replace") or "an empty body"
        return UpstreamBadResponse(f"the upstream sent no stream events, but: {text}")


def _network_error(exc: BaseException, timeout_s: float | None) -> UpstreamError:
    if isinstance(exc, aiohttp.ServerDisconnectedError):  # no OS error underneath to name it
        return UpstreamConnectionError("the upstream closed the connection without an answer")
    return transport_error(exc, timed_out=isinstance(exc, TimeoutError), within_s=timeout_s)


def _cut_reason(exc: BaseException) -> str:
    if isinstance(exc, aiohttp.ClientPayloadError):
        return "its chunked body ended early"
    return connection_failure(exc)


def _status_error(status: int, headers: Mapping[str, str], content: bytes) -> _Attempt:
    retry_after = retry_after_s(status, headers)
    return _Attempt(status_error(status, content, retry_after), retry_after)


def _json_object(content: bytes) -> dict[str, Any]:
    try:
        data = json.loads(content)
    except ValueError as exc:  # JSONDecodeError and UnicodeDecodeError
        start = content[:200].decode("utf-8", "replace").strip() or "an empty body"
        message = f"the upstream answered with a body that is not JSON: {start}"
        raise _Attempt(UpstreamBadResponse(message)) from exc
    if not isinstance(data, dict):
        raise _Attempt(UpstreamBadResponse("the upstream answered with JSON that is not an object"))
    return data


async def _read_quietly(response: aiohttp.ClientResponse) -> bytes:
    """An error body that cannot be read still leaves its status to report."""
    try:
        return await response.read()
    except _NETWORK:
        return b""
