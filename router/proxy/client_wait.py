"""How long a request may wait for the upstream, and whether its client still waits.

One deadline per request (`deadline_for`): the upstream timeout, shortened by the
client's own timeout when it sends one. The openai SDKs send theirs as
`X-Stainless-Read-Timeout` (seconds); any client may send `X-Sleeptime-Timeout`, which
wins. Every upstream call the request makes (a checked answer's voters, the call that
goes full after them, a stream's opening) shares that deadline.

A client that leaves is passed on (`unless_client_leaves`): while the upstream call
runs, the ASGI channel is watched for `http.disconnect` (the body has been read by then,
so nothing else arrives on it), and the call is cancelled, which closes its upstream
connection; no retry starts after that. The record says 499 "client_closed". Before,
the retries went on for nobody and the record said 504, or even 200.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, TypeVar

from router.proxy.api_errors import ApiError
from router.upstream.retry import client_timeout_s, deadline_at

T = TypeVar("T")
Receive = Callable[[], Awaitable[dict[str, Any]]]
# First found wins: the client's explicit word, then what its SDK sends on its own.
TIMEOUT_HEADERS = ("x-sleeptime-timeout", "x-stainless-read-timeout")
CLIENT_CLOSED = 499  # nginx's status for a client that closed the request first


class ClientClosed(Exception):
    """The client left while the upstream call ran; the call has been cancelled."""


def deadline_for(headers: Mapping[str, str], timeout_s: float, now: float | None = None) -> float:
    """The request's deadline on the `time.monotonic()` clock."""
    client = None
    for header in TIMEOUT_HEADERS:
        client = client_timeout_s(headers.get(header))
        if client:
            break
    return deadline_at(timeout_s, time.monotonic() if now is None else now, client or None)


def client_closed() -> ApiError:
    """What the record says of a request whose client left (nobody reads the response)."""
    message = "the client closed the request before the upstream answered"
    return ApiError(CLIENT_CLOSED, message, type="client_error", code="client_closed")


async def unless_client_leaves(receive: Receive | None, call: Awaitable[T]) -> T:
    """`call`'s result, or ClientClosed once `http.disconnect` arrived first: the call is
    cancelled where it waits, so its upstream connection is closed before this returns.

    One watcher task per call, which cancels this task on a disconnect: 13 us a request
    where a task for the call too and `asyncio.wait` cost 39 us (uvloop, this machine)."""
    if receive is None:
        return await call
    task = asyncio.current_task()
    assert task is not None
    left: list[bool] = []
    watcher = asyncio.get_running_loop().create_task(_cancel_on_disconnect(receive, task, left))
    try:
        return await call
    except asyncio.CancelledError:
        if left and task.uncancel() == 0:  # the watcher's cancel, and nobody else's
            raise ClientClosed from None
        raise
    finally:
        watcher.cancel()  # no await since `call` ended: the watcher cannot have fired since


async def _cancel_on_disconnect(
    receive: Receive, task: asyncio.Task[Any], left: list[bool]
) -> None:
    """Runs only while `task` waits inside the call (it is cancelled as the call ends)."""
    while (await receive())["type"] != "http.disconnect":
        pass
    left.append(True)
    task.cancel()
