"""/health is liveness, /health/ready readiness: 503 while no upstream answers, 200 once
one does, and the upstream asked at most once per ~2 s however often probes come."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from fake_upstream import FakeUpstream, healthy
from model_list_proxy import serving
from proxy_fakes import config_for

from router.errors import UpstreamConnectionError
from router.local_server import free_port
from router.proxy.app import create_app
from router.proxy.config import ProxyConfig
from router.proxy.readiness import Readiness
from router.proxy.server import ServerThread


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


class Probe:
    def __init__(self, *outcomes: Exception | None, delay_s: float = 0.0) -> None:
        self.outcomes, self.delay_s, self.calls = list(outcomes), delay_s, 0

    async def __call__(self, deadline: float) -> None:
        self.calls += 1
        await asyncio.sleep(self.delay_s)
        outcome = self.outcomes.pop(0) if self.outcomes else None
        if outcome is not None:
            raise outcome


def test_an_answer_is_kept_ttl_and_concurrent_probes_share_one_check() -> None:
    clock, probe = Clock(), Probe(UpstreamConnectionError("refused"), None, delay_s=0.01)
    readiness = Readiness([("http://u:1/v1", probe)], ttl_s=2.0, clock=clock)

    async def probes(count: int) -> list[str | None]:
        return await asyncio.gather(*(readiness.check() for _ in range(count)))

    async def scenario() -> None:
        first = await probes(20)
        assert probe.calls == 1
        assert first == ["no upstream answers (http://u:1/v1: refused)"] * 20
        clock.now = 1.9
        assert await probes(5) == first[:5] and probe.calls == 1
        clock.now = 2.0
        assert await probes(5) == [None] * 5 and probe.calls == 2

    asyncio.run(scenario())


def test_ready_when_any_upstream_of_the_default_answers_and_a_hang_is_a_reason() -> None:
    down, up = Probe(UpstreamConnectionError("refused")), Probe()
    assert asyncio.run(Readiness([("http://a/v1", down), ("http://b/v1", up)]).check()) is None
    hung = Readiness([("http://k:pw@a/v1?key=s", Probe(delay_s=5))], timeout_s=0.05)
    reason = asyncio.run(hung.check())
    assert reason == "no upstream answers (http://a/v1: no answer to GET /models within 0.05 s)"


@pytest.fixture
def port() -> int:
    return free_port()


@pytest.fixture
def proxy(tmp_path: Path, port: int) -> Iterator[ServerThread]:
    """A proxy whose one upstream, on `port`, is down until a test starts it."""
    settings = config_for(tmp_path).settings.replace(upstream_url=f"http://127.0.0.1:{port}/v1")
    config = ProxyConfig.from_settings(settings, sleep_enabled=False)
    with ServerThread(create_app(config), free_port()) as server:
        yield server


def get(proxy: ServerThread, path: str) -> httpx.Response:
    return httpx.get(proxy.url.removesuffix("/v1") + path, timeout=10)


def test_ready_fails_while_the_upstream_is_down_and_health_stays_ok(
    proxy: ServerThread, port: int
) -> None:
    assert get(proxy, "/health").status_code == 200
    down = get(proxy, "/health/ready")
    assert down.status_code == 503
    assert down.json()["status"] == "unavailable"
    assert f"http://127.0.0.1:{port}/v1" in down.json()["reason"]
    assert "connect" in down.json()["reason"]
    readiness = proxy.server.config.app.state.proxy.models.readiness
    readiness.ttl_s = 0.05  # the next probe asks again
    with FakeUpstream(healthy, port=port) as upstream:
        for _ in range(20):
            up = get(proxy, "/health/ready")
        assert up.status_code == 200 and up.json() == {"status": "ready"}
        readiness.ttl_s = 60.0
        asked = len(upstream.requests)
        for _ in range(20):
            assert get(proxy, "/health/ready").status_code == 200
        assert len(upstream.requests) == asked  # probes within the TTL do not reach it
    assert all(r.path == "/v1/models" for r in upstream.requests)


def test_with_a_model_list_a_fallback_that_answers_is_ready(
    tmp_path: Path, port: int, fake: FakeUpstream
) -> None:
    fake.fallback = healthy
    models = [
        {"name": "fast", "upstream_url": f"http://127.0.0.1:{port}/v1", "fallbacks": ["b"]},
        {"name": "b", "upstream_url": fake.url},
    ]
    with serving(tmp_path, models) as server:
        assert get(server, "/health/ready").json() == {"status": "ready"}
