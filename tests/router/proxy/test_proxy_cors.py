"""CORS only when `cors_origins` is set, and then for exactly those origins."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
from fake_upstream import FakeUpstream, healthy
from proxy_fakes import KEY_A, config_for

from router.local_server import free_port
from router.proxy.app import create_app
from router.proxy.config import ProxyConfig
from router.proxy.server import ServerThread

BODY = {"model": "m", "messages": [{"role": "user", "content": "hi"}]}
PAGE = "https://app.example.com"
PREFLIGHT = {
    "Access-Control-Request-Method": "POST",
    "Access-Control-Request-Headers": "authorization, content-type",
}


@contextmanager
def running(tmp_path: Path, fake: FakeUpstream, **settings: Any) -> Iterator[str]:
    fake.fallback = healthy
    base = config_for(tmp_path).settings.replace(upstream_url=fake.url, **settings)
    app = create_app(ProxyConfig.from_settings(base, sleep_enabled=False))
    with ServerThread(app, free_port()) as server:
        yield server.url


def cors_headers(response: httpx.Response) -> set[str]:
    return {name for name in response.headers if name.startswith("access-control-")}


def test_no_cors_headers_by_default(tmp_path: Path, fake: FakeUpstream) -> None:
    with running(tmp_path, fake) as url:
        headers = {"Origin": PAGE, "Authorization": f"Bearer {KEY_A}"}
        answered = httpx.post(f"{url}/chat/completions", json=BODY, headers=headers)
        assert answered.status_code == 200 and cors_headers(answered) == set()
        preflight = httpx.options(f"{url}/chat/completions", headers={"Origin": PAGE, **PREFLIGHT})
        assert preflight.status_code >= 400 and cors_headers(preflight) == set()


def test_configured_origins_and_only_those(tmp_path: Path, fake: FakeUpstream) -> None:
    other = "https://evil.example.net"
    with running(tmp_path, fake, cors_origins=f"{PAGE}, https://two.example.com") as url:
        preflight = httpx.options(f"{url}/chat/completions", headers={"Origin": PAGE, **PREFLIGHT})
        assert preflight.status_code == 200
        assert preflight.headers["access-control-allow-origin"] == PAGE
        refused = httpx.options(f"{url}/chat/completions", headers={"Origin": other, **PREFLIGHT})
        assert "access-control-allow-origin" not in refused.headers
        headers = {"Origin": PAGE, "Authorization": f"Bearer {KEY_A}"}
        answered = httpx.post(f"{url}/chat/completions", json=BODY, headers=headers)
        assert answered.headers["access-control-allow-origin"] == PAGE
        keyless = httpx.post(f"{url}/chat/completions", json=BODY, headers={"Origin": PAGE})
        assert keyless.status_code == 401  # a page can read why, and still needs a key
        assert keyless.headers["access-control-allow-origin"] == PAGE
        stranger = httpx.post(
            f"{url}/chat/completions", json=BODY, headers={**headers, "Origin": other}
        )
        assert "access-control-allow-origin" not in stranger.headers
