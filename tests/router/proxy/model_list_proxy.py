"""A real proxy over real HTTP in front of fake upstreams, configured by a [[model]] list."""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import openai
from proxy_fakes import KEY_A

from router.local_server import free_port
from router.model_list import parse_models
from router.proxy.app import create_app
from router.proxy.config import ProxyConfig
from router.proxy.server import ServerThread
from router.settings import Settings

TIMEOUT_S = 2.0  # the request deadline: a hung primary falls over after half of it
AUTH = {"Authorization": f"Bearer {KEY_A}"}


def settings_for(tmp_path: Path, models: list[dict[str, Any]], **flat: Any) -> Settings:
    """Every model names its own upstream_url, so no embedded model starts."""
    flat = {"upstream_timeout_s": TIMEOUT_S, "upstream_max_retries": 0, **flat}
    return Settings(cache_dir=tmp_path, model_list=parse_models(models, {}), **flat)


@contextmanager
def serving(tmp_path: Path, models: list[dict[str, Any]], **flat: Any) -> Iterator[ServerThread]:
    config = ProxyConfig.from_settings(settings_for(tmp_path, models, **flat), sleep_enabled=False)
    with ServerThread(create_app(config), free_port()) as server:
        yield server


def client_for(server: ServerThread) -> openai.OpenAI:
    return openai.OpenAI(base_url=server.url, api_key=KEY_A, max_retries=0, timeout=30)


def record_of(tmp_path: Path, request_id: str, timeout_s: float = 5.0) -> dict[str, Any]:
    """The stored record of a request, once the writer has it in the SQLite store."""
    deadline = time.monotonic() + timeout_s
    while True:
        with sqlite3.connect(tmp_path / "sleeptime.sqlite") as db:
            db.row_factory = sqlite3.Row
            sql = "SELECT * FROM requests WHERE request_id = ?"
            row = db.execute(sql, (request_id,)).fetchone()
        if row is not None:
            return dict(row)
        if time.monotonic() > deadline:
            raise AssertionError(f"no record of {request_id}")
        time.sleep(0.02)
