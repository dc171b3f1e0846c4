"""A resolved model: its chain of upstreams, and the caller that falls back along it.

A route is the model a client named, as steps: the model itself, then its fallbacks in
order (their own fallbacks after them, each model once). A request with one step calls
its Forwarder directly, so the common case costs nothing; with more it calls through a
`Fallback`, which has the Forwarder's interface for the calls the pipeline makes and
moves to the next step when an upstream is down (5xx, timeout, refused connection),
never when it refused the request (4xx: the next model would refuse it too) nor once
the request's deadline is spent.

All steps share the request's one deadline. Each try may use the time left split evenly
over the steps still to try, so a hung primary leaves its fallbacks time to answer
(with a 120 s deadline and one fallback: 60 s each), while a primary that fails fast
leaves them all of it. For a stream the deadline bounds only the wait for its first
event, so long streamed answers are not cut by the split.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

from router.errors import UpstreamConnectionError, UpstreamServerError, UpstreamTimeout

log = logging.getLogger("sleeptime.proxy")
T = TypeVar("T")
# What moves a request to the next model: the upstream is down, not the request wrong.
FALL_OVER = (UpstreamServerError, UpstreamTimeout, UpstreamConnectionError)
MAX_HEADER_NAME = 256


class Caller(Protocol):
    """What the call stages use of an upstream (router.upstream.Forwarder has it)."""

    async def post(self, path: str, body: bytes, *, deadline: float | None = None) -> Any: ...

    async def open_stream(
        self, path: str, body: bytes, *, deadline: float | None = None
    ) -> Any: ...


@dataclass(frozen=True)
class Step:
    name: str  # what records and the X-Sleeptime-Model header call the model
    model: str  # what its upstream is asked for
    upstream: Any  # a Caller: the Forwarder of its upstream


@dataclass(frozen=True)
class Route:
    steps: tuple[Step, ...]
    replaced: bool  # whether the body's "model" must become `model`

    @property
    def name(self) -> str:
        return self.steps[0].name

    @property
    def model(self) -> str:
        return self.steps[0].model

    def caller(self, answered: Callable[[str], None]) -> Caller:
        """What the request calls; `answered(name)` hears of a fallback that answered."""
        if len(self.steps) == 1:
            return self.steps[0].upstream  # type: ignore[no-any-return]
        return Fallback(self.steps, answered)


class Fallback:
    def __init__(
        self,
        steps: tuple[Step, ...],
        answered: Callable[[str], None],
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.steps = steps
        self.answered = answered
        self.clock = clock

    async def post(self, path: str, body: bytes, *, deadline: float | None = None) -> Any:
        return await self._along(
            lambda up, b, until: up.post(path, b, deadline=until), body, deadline
        )

    async def open_stream(self, path: str, body: bytes, *, deadline: float | None = None) -> Any:
        return await self._along(
            lambda up, b, until: up.open_stream(path, b, deadline=until), body, deadline
        )

    async def _along(
        self, call: Callable[[Any, bytes, float], Awaitable[T]], body: bytes, deadline: float | None
    ) -> T:
        """`deadline` None: the first upstream's timeout from now, as a Forwarder would."""
        if deadline is None:
            deadline = self.clock() + self.steps[0].upstream.timeout_s
        last = len(self.steps) - 1
        for index, step in enumerate(self.steps):
            until = share_of(deadline, len(self.steps) - index, self.clock())
            try:
                sent = body if index == 0 else with_model(body, step)
                result = await call(step.upstream, sent, until)
            except FALL_OVER as exc:
                if index == last or self.clock() >= deadline:
                    raise
                log.warning(
                    "model %s failed (%s); trying %s", step.name, exc, self.steps[index + 1].name
                )
                continue
            if index:
                self.answered(step.name)
            return result
        raise AssertionError("a route has at least one step")


def model_header(headers: dict[str, str], model: str | None) -> None:
    """`X-Sleeptime-Model`, the model that answered; only a name a header can carry as it is
    (with one upstream and no allow-list the name is the client's, any string)."""
    if model and len(model) <= MAX_HEADER_NAME and model.isascii() and model.isprintable():
        headers["X-Sleeptime-Model"] = model


def with_model(body: bytes, step: Step) -> bytes:
    """The body for a fallback's upstream: the same request, its model's name in it."""
    data = json.loads(body)
    data["model"] = step.model
    return json.dumps(data).encode()


def share_of(deadline: float, steps_left: int, now: float) -> float:
    """One try's deadline: the time left, split evenly over the steps still to try."""
    return now + (deadline - now) / steps_left
