"""The fallback chain without a socket: which errors move on, and the shared deadline."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest

from router.errors import (
    UpstreamConnectionError,
    UpstreamError,
    UpstreamRateLimited,
    UpstreamRejected,
    UpstreamServerError,
    UpstreamTimeout,
)
from router.proxy.fallback import Fallback, Route, Step, model_header, share_of


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


class Upstream:
    """Answers (or raises) in turn; each call costs `spends` seconds of the clock."""

    def __init__(self, clock: Clock, *outcomes: Any, spends: float = 0.0) -> None:
        self.clock, self.outcomes, self.spends = clock, list(outcomes), spends
        self.calls: list[tuple[dict[str, Any], float]] = []
        self.timeout_s = 10.0

    async def post(self, path: str, body: bytes, *, deadline: float | None = None) -> Any:
        assert deadline is not None
        self.calls.append((json.loads(body), deadline))
        self.clock.now += self.spends
        outcome = self.outcomes.pop(0)
        if isinstance(outcome, Exception):
            raise outcome
        return outcome

    open_stream = post


def chain(clock: Clock, *upstreams: Upstream) -> tuple[Fallback, list[str]]:
    steps = tuple(Step(f"m{i}", f"up-{i}", u) for i, u in enumerate(upstreams))
    answered: list[str] = []
    return Fallback(steps, answered.append, clock=clock), answered


BODY = json.dumps({"model": "up-0", "input": "x"}).encode()


@pytest.mark.parametrize(
    "error",
    [UpstreamServerError("500"), UpstreamTimeout("slow"), UpstreamConnectionError("refused")],
)
def test_a_down_upstream_moves_to_the_next_model(error: UpstreamError) -> None:
    clock = Clock()
    first, second = Upstream(clock, error), Upstream(clock, "ok")
    fallback, answered = chain(clock, first, second)
    assert asyncio.run(fallback.post("/x", BODY, deadline=110.0)) == "ok"
    assert second.calls[0][0] == {"model": "up-1", "input": "x"}
    assert answered == ["m1"]


@pytest.mark.parametrize(
    "error", [UpstreamRejected("bad", upstream_status=400), UpstreamRateLimited("slow down")]
)
def test_a_refused_request_is_answered_as_it_is(error: UpstreamError) -> None:
    clock = Clock()
    second = Upstream(clock, "never")
    fallback, answered = chain(clock, Upstream(clock, error), second)
    with pytest.raises(type(error)):
        asyncio.run(fallback.open_stream("/x", BODY, deadline=110.0))
    assert second.calls == [] and answered == []


def test_the_deadline_is_split_over_the_steps_left_and_never_passed() -> None:
    clock = Clock()
    hung = Upstream(clock, UpstreamTimeout("slow"), spends=5.0)  # its whole share
    second = Upstream(clock, "ok")
    fallback, _ = chain(clock, hung, second)
    assert asyncio.run(fallback.post("/x", BODY, deadline=110.0)) == "ok"
    assert hung.calls[0][1] == 105.0  # half of the 10 s left
    assert second.calls[0][1] == 110.0  # all that is left
    spent = Upstream(clock, UpstreamServerError("500"), spends=20.0)
    fallback, _ = chain(clock, spent, Upstream(clock, "never"))
    with pytest.raises(UpstreamServerError):  # past the deadline: no next try
        asyncio.run(fallback.post("/x", BODY, deadline=clock.now + 10.0))
    assert share_of(10.0, 4, 2.0) == 4.0


def test_no_deadline_means_the_first_upstreams_timeout() -> None:
    clock = Clock()
    only = Upstream(clock, "ok")
    fallback, _ = chain(clock, only, Upstream(clock))
    asyncio.run(fallback.post("/x", BODY))
    assert only.calls[0][1] == 105.0  # 10 s timeout, halved for the one fallback


def test_a_single_step_route_calls_its_upstream_directly() -> None:
    upstream = Upstream(Clock())
    route = Route((Step("m", "m", upstream),), replaced=False)
    assert route.caller(lambda name: None) is upstream
    assert isinstance(Route((*route.steps, *route.steps), True).caller(print), Fallback)


@pytest.mark.parametrize(
    ("model", "sent"),
    [
        ("gpt-4o", True),
        ("a b/c:1", True),
        ("\U0004b1e2", False),
        ("a\r\nX: y", False),
        ("m" * 300, False),
        (None, False),
    ],
)
def test_the_model_header_carries_only_what_a_header_can(model: str | None, sent: bool) -> None:
    headers: dict[str, str] = {}
    model_header(headers, model)
    assert headers == ({"X-Sleeptime-Model": model} if sent else {})
