"""Fixtures for the proxy: a fake upstream, a proxy app in front of it, a fake sleep backend."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests/router: fake_upstream

from fake_upstream import FakeUpstream
from fastapi.testclient import TestClient
from proxy_fakes import DEFAULT_KEY, QUICK, FakeSleepBackend, config_for

from router.proxy.app import create_app
from router.upstream import Forwarder


@pytest.fixture
def sleeper() -> FakeSleepBackend:
    return FakeSleepBackend()


@pytest.fixture
def make_client(
    tmp_path: Path, fake: FakeUpstream, sleeper: FakeSleepBackend
) -> Iterator[Callable[..., TestClient]]:
    """make_client(**config overrides, router=..., timeout_s=...) -> a started TestClient."""
    stack: list[tuple[TestClient, Forwarder]] = []

    def make(*, router: Any = None, timeout_s: float = 5.0, **overrides: Any) -> TestClient:
        overrides.setdefault("sleep_enabled", False)
        overrides.setdefault("upstream_timeout_s", timeout_s)  # the request's deadline
        forwarder = Forwarder(fake.url, timeout_s=timeout_s, retry=QUICK)
        app = create_app(
            config_for(tmp_path, **overrides),
            forwarder=forwarder,
            router=router,
            sleep_backend=sleeper,
        )
        # Local mode: any bearer key is a tenant; a request with none is refused (401).
        client = TestClient(app, headers={"Authorization": f"Bearer {DEFAULT_KEY}"}).__enter__()
        stack.append((client, forwarder))
        return client

    yield make
    for client, forwarder in reversed(stack):
        client.portal.call(forwarder.aclose)  # the caller owns what it injected
        client.__exit__(None, None, None)


@pytest.fixture
def client(make_client: Callable[..., TestClient]) -> TestClient:
    return make_client()
