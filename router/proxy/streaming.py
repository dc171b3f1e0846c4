"""A streamed answer: the upstream's stream relayed as it arrives, in any format.

The format's relay (`FormatAdapter.relay`) reads the events; this module opens the
upstream stream and settles what a request holds (the upstream connection, the
in-flight count, the tenant's slot, the record) however the stream ends.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import anyio
from fastapi.responses import Response, StreamingResponse

from router.errors import UpstreamError
from router.proxy.api_errors import from_upstream
from router.proxy.client_wait import unless_client_leaves
from router.proxy.exchange import Exchange
from router.proxy.formats.adapter import Outgoing, Relay
from router.proxy.replies import SSE


async def stream(exchange: Exchange, outgoing: Outgoing) -> Response:
    """Opens the upstream stream by the request's deadline; ClientClosed (the opening
    cancelled) when the client leaves first. Once relaying, a client that leaves stops the
    relay (Starlette listens for `http.disconnect`) and the upstream stream is closed."""
    state = exchange.state
    caller = exchange.upstream or state.forwarder
    opening = caller.open_stream(
        exchange.format.upstream_path, outgoing.body, deadline=exchange.deadline
    )
    state.inflight.begin()
    try:
        upstream = await unless_client_leaves(exchange.receive, opening)
    except UpstreamError as exc:
        state.inflight.end()
        return exchange.fail(from_upstream(exc))
    except BaseException:
        state.inflight.end()
        raise
    relay = exchange.format.relay(
        upstream,
        strip_usage=outgoing.strip_usage,
        before_done=lambda status, code, usage: exchange.finish(status, code, usage=usage),
        spent_before=exchange.spent_before,
    )
    return RelayResponse(exchange, relay)


class SettledStream(StreamingResponse):
    """A relayed stream that cleans up in `__call__`, not in the body iterator, which never
    starts at all when the client leaves before the first event: its events and the
    upstream stream are closed, then `settle` runs, however the stream ended. `on_close`
    gives back the tenant's slot (the caller sets it)."""

    def __init__(self, events: Any, upstream: Any, headers: dict[str, str]) -> None:
        self._events = events
        super().__init__(events, headers=headers, media_type=SSE)
        self._upstream = upstream
        self.on_close: Callable[[], None] = lambda: None

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            with anyio.CancelScope(shield=True):
                await self._events.aclose()
                await self._upstream.aclose()
            self.settle()

    def settle(self) -> None:
        raise NotImplementedError


class RelayResponse(SettledStream):
    """A routed stream: the in-flight count, the tenant's slot and, when the client left
    before [DONE], the record."""

    def __init__(self, exchange: Exchange, relay: Relay) -> None:
        super().__init__(relay.events(), relay, exchange.headers())
        self._exchange = exchange
        self._relay = relay

    def settle(self) -> None:
        self._exchange.state.inflight.end()
        self.on_close()
        if not self._relay.settled:  # the client left before [DONE]
            self._exchange.finish(*self._relay.outcome(), usage=self._relay.usage)
