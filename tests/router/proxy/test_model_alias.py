"""The "sleeptime" model alias: resolved once, and which names a client may use."""

from __future__ import annotations

import asyncio

import pytest

from router.errors import UpstreamConnectionError
from router.proxy.api_errors import ApiError
from router.proxy.model_alias import ModelAlias


class Upstream:
    def __init__(self, *names: str, error: Exception | None = None) -> None:
        self.names, self.error, self.asked = list(names), error, 0

    async def models(self) -> list[str]:
        self.asked += 1
        if self.error is not None:
            raise self.error
        return self.names


def resolve(alias: ModelAlias, requested: object) -> tuple[str, bool]:
    route = asyncio.run(alias.resolve(requested))
    assert route.name == route.model  # one upstream: records name the upstream's model
    assert route.caller(lambda name: None) is alias.upstream  # no fallback wrapper
    return route.model, route.replaced


def status_of(alias: ModelAlias, requested: object) -> tuple[int, str | None]:
    with pytest.raises(ApiError) as caught:
        resolve(alias, requested)
    return caught.value.status, caught.value.code


def test_the_alias_is_the_configured_model_else_the_upstreams_first() -> None:
    assert resolve(ModelAlias(Upstream(), configured="m", local=False), "sleeptime") == ("m", True)
    upstream = Upstream("first", "second")
    alias = ModelAlias(upstream, local=False)
    assert resolve(alias, None) == resolve(alias, "") == ("first", True)
    assert upstream.asked == 1  # asked once


def test_other_names_pass_or_are_refused() -> None:
    anything = ModelAlias(Upstream(), configured="m", local=False)
    assert resolve(anything, "gpt-x") == ("gpt-x", False)
    listed = ModelAlias(Upstream(), configured="m", allowed=("a", "b"), local=False)
    assert resolve(listed, "b") == ("b", False)
    assert status_of(listed, "c") == (404, "model_not_found")
    local = ModelAlias(Upstream(), configured="qwen", local=True)
    assert resolve(local, "qwen") == ("qwen", False)
    assert status_of(local, "gpt-x") == (404, "model_not_found")


def test_an_upstream_that_cannot_say_is_a_502() -> None:
    assert status_of(ModelAlias(Upstream(), local=False), None) == (502, "upstream_model_unknown")
    broken = ModelAlias(Upstream(error=UpstreamConnectionError("down")), local=False)
    assert status_of(broken, "sleeptime") == (502, "upstream_model_unknown")
