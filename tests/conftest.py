"""Shared fixtures: the real embedded model (0.5B, started once per session), a fake upstream."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

# Test helpers imported by name from any folder: fake_upstream, synthetic_outcomes,
# outcome_rows.
sys.path.insert(0, str(Path(__file__).resolve().parent / "router"))
sys.path.insert(0, str(Path(__file__).resolve().parent / "training"))

import pg_server
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


@pytest.fixture(scope="session")
def pg() -> Iterator[pg_server.PgServer]:
    """A throwaway PostgreSQL server for the session (tests/router/pg_server.py); its tests
    skip, saying why, where none can start (no binaries: `scripts/postgres` installs them)."""
    try:
        server = pg_server.start()
    except pg_server.NoServer as exc:
        pytest.skip(f"PostgreSQL tests SKIPPED, no server: {exc}")
    yield server
    server.stop()
