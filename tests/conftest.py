"""Shared fixtures: the real embedded model (0.5B, started once per session)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from router.local_server import LocalServer, LocalServerConfig
from router.settings import load_settings

TEST_MODEL = "qwen2.5-coder-0.5b"


@pytest.fixture(scope="session")
def local_server() -> Iterator[LocalServer]:
    settings = load_settings().replace(local_model=TEST_MODEL, local_parallel=2, local_ctx=4096)
    with LocalServer(LocalServerConfig.from_settings(settings)) as server:
        yield server
