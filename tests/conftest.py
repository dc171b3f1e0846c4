"""Shared fixtures: the real embedded model (0.5B, started once per session), a fake upstream."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

# Test helpers imported by name from any folder: fake_upstream, synthetic_outcomes.
sys.path.insert(0, str(Path(__file__).resolve().parent / "router"))
sys.path.insert(0, str(Path(__file__).resolve().parent / "training"))

from fake_upstream import FakeUpstream

from router.local_server import LocalServer, LocalServerConfig
from router.settings import load_settings

TEST_MODEL = "qwen2.5-coder-0.5b"


@pytest.fixture(scope="session")
def local_server() -> Iterator[LocalServer]:
    settings = load_settings().replace(local_model=TEST_MODEL, local_parallel=2, local_ctx=4096)
    with LocalServer(LocalServerConfig.from_settings(settings)) as server:
        yield server


@pytest.fixture
def fake() -> Iterator[FakeUpstream]:
    """A real HTTP server that answers what a test enqueues, and keeps what it was sent."""
    with FakeUpstream() as server:
        yield server
