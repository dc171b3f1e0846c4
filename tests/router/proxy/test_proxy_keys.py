"""Client authentication over real HTTP: the master key, client keys, the admin API.

With a master key set, a request without a key, with an unknown one or with a revoked
one gets 401 in OpenAI's shape before its body is read, before any upstream call and
before any sleep-time work; the master key alone reaches `/admin/*` and `/metrics`.
Without one the proxy is local-only: any bearer key is its own tenant, none is refused.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import openai
import pytest
from fake_upstream import FakeUpstream, healthy
from proxy_fakes import config_for

from router.local_server import free_port
from router.proxy.app import create_app
from router.proxy.config import ProxyConfig
from router.proxy.server import ServerThread
from router.store import SqliteStore

MASTER = "sk-master-0123456789"
BODY = {"model": "m", "messages": [{"role": "user", "content": "hi"}]}
OPEN_PATHS = ("/health", "/openapi.json", "/docs")


def start(tmp_path: Path, fake: FakeUpstream, **settings: object) -> ServerThread:
    fake.fallback = healthy
    base = config_for(tmp_path).settings.replace(upstream_url=fake.url, **settings)
    config = ProxyConfig.from_settings(base, sleep_enabled=True)
    return ServerThread(create_app(config), free_port())


@pytest.fixture
def proxy(tmp_path: Path, fake: FakeUpstream) -> Iterator[ServerThread]:
    with start(tmp_path, fake, master_key=MASTER) as server:
        yield server


def root(server: ServerThread) -> str:
    return server.url.removesuffix("/v1")


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def create(server: ServerThread, name: str, **limits: object) -> str:
    response = httpx.post(
        f"{root(server)}/admin/keys", json={"name": name, **limits}, headers=bearer(MASTER)
    )
    assert response.status_code == 201, response.text
    return str(response.json()["key"])


def assert_401(response: httpx.Response) -> dict:
    assert response.status_code == 401, response.text
    assert response.headers["www-authenticate"] == "Bearer"
    error = response.json()["error"]
    assert set(error) == {"message", "type", "param", "code"}
    assert (error["type"], error["param"], error["code"]) == (
        "invalid_request_error",
        None,
        "invalid_api_key",
    )
    return error


@pytest.mark.parametrize(
    "headers",
    [
        {},
        bearer("sk-made-up"),
        {"Authorization": "Bearer"},
        {"Authorization": MASTER},
        bearer(MASTER + "x"),
    ],
    ids=["none", "unknown", "empty", "no-scheme", "master-prefix"],
)
def test_no_live_key_gets_401_and_reaches_nothing(
    proxy: ServerThread, fake: FakeUpstream, headers: dict[str, str], tmp_path: Path
) -> None:
    for path, body in (("/v1/chat/completions", BODY), ("/v1/contexts", {"context": "x y z"})):
        assert_401(httpx.post(root(proxy) + path, json=body, headers=headers))
    assert_401(httpx.get(f"{proxy.url}/models", headers=headers))
    assert fake.requests == []  # no upstream call
    store = SqliteStore(config_for(tmp_path).database)
    assert store.job_counts() == {}  # no sleep-time work queued
    assert store.get_context(tenant="master", context_id="x") is None
    store.close()
    metrics = httpx.get(f"{root(proxy)}/metrics", headers=bearer(MASTER)).text
    assert 'sleeptime_refused_total{code="invalid_api_key",status="401"} 3.0' in metrics


def test_401_comes_before_the_body_is_read(proxy: ServerThread) -> None:
    """Headers only, a body announced and never sent: the answer comes anyway."""
    host, port = proxy.url.split("//")[1].split("/")[0].split(":")
    with socket.create_connection((host, int(port)), timeout=5) as sock:
        sock.sendall(
            b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\n"
            b"Content-Type: application/json\r\nContent-Length: 100000\r\n\r\n"
        )
        answer = sock.recv(4096)
    assert answer.startswith(b"HTTP/1.1 401")


def test_real_client_with_a_client_key_is_served_and_the_key_never_leaves(
    proxy: ServerThread, fake: FakeUpstream
) -> None:
    key = create(proxy, "alice")
    client = openai.OpenAI(base_url=proxy.url, api_key=key, max_retries=0)
    answer = client.chat.completions.create(model="m", messages=[{"role": "user", "content": "hi"}])
    assert answer.choices[0].message.content == "ok"
    with pytest.raises(openai.AuthenticationError):
        openai.OpenAI(base_url=proxy.url, api_key="sk-nope", max_retries=0).models.list()
    sent = fake.requests[-1]
    assert key not in str(sent.headers) and MASTER not in str(sent.headers)


def test_revoked_through_the_admin_api_is_refused_at_once(proxy: ServerThread) -> None:
    key = create(proxy, "bob")
    assert httpx.post(f"{proxy.url}/chat/completions", json=BODY, headers=bearer(key)).is_success
    revoked = httpx.delete(f"{root(proxy)}/admin/keys/bob", headers=bearer(MASTER))
    assert revoked.status_code == 200 and revoked.json()["revoked"] is True
    error = assert_401(httpx.post(f"{proxy.url}/chat/completions", json=BODY, headers=bearer(key)))
    assert "revoked" in error["message"]


def test_revoked_from_the_cli_is_refused_within_a_second(
    proxy: ServerThread, tmp_path: Path
) -> None:
    key = create(proxy, "carol")
    assert httpx.post(f"{proxy.url}/chat/completions", json=BODY, headers=bearer(key)).is_success
    other = SqliteStore(config_for(tmp_path).database)  # as `sleeptime keys revoke` opens it
    other.revoke_key("carol")
    other.close()
    time.sleep(1.1)
    assert_401(httpx.post(f"{proxy.url}/chat/completions", json=BODY, headers=bearer(key)))


def test_admin_api_is_the_master_keys_alone(proxy: ServerThread) -> None:
    key = create(proxy, "dave", rpm=5, budget_usd=1.5)
    for method, path in (("GET", "/admin/keys"), ("POST", "/admin/keys"), ("GET", "/metrics")):
        refused = httpx.request(method, root(proxy) + path, json={"name": "x"}, headers=bearer(key))
        assert refused.status_code == 403 and refused.json()["error"]["code"] == "forbidden"
    listed = httpx.get(f"{root(proxy)}/admin/keys", headers=bearer(MASTER)).json()["data"]
    assert [(k["name"], k["rpm"], k["budget_usd"], k["revoked"]) for k in listed] == [
        ("dave", 5, 1.5, False)
    ]
    assert key not in str(listed) and listed[0]["prefix"] == key[:7] + "…"
    assert "key_hash" not in listed[0]
    again = httpx.post(f"{root(proxy)}/admin/keys", json={"name": "dave"}, headers=bearer(MASTER))
    assert again.status_code == 409 and again.json()["error"]["code"] == "key_exists"
    missing = httpx.delete(f"{root(proxy)}/admin/keys/nobody", headers=bearer(MASTER))
    assert missing.status_code == 404
    bad = httpx.post(
        f"{root(proxy)}/admin/keys", json={"name": "a b", "rpm": -1}, headers=bearer(MASTER)
    )
    assert bad.status_code == 400


def test_metrics_need_the_master_key_and_open_paths_stay_open(proxy: ServerThread) -> None:
    assert_401(httpx.get(f"{root(proxy)}/metrics"))
    assert httpx.get(f"{root(proxy)}/metrics", headers=bearer(MASTER)).status_code == 200
    for path in OPEN_PATHS:
        assert httpx.get(root(proxy) + path).status_code == 200, path


def test_local_mode_each_key_its_own_tenant_and_no_key_refused(
    tmp_path: Path, fake: FakeUpstream
) -> None:
    with start(tmp_path, fake) as server:
        url = root(server)
        error = assert_401(httpx.post(f"{url}/v1/contexts", json={"id": "d", "context": "x"}))
        assert "local mode" in error["message"]
        made = httpx.post(
            f"{url}/v1/contexts", json={"id": "d", "context": "x"}, headers=bearer("any-1")
        )
        assert made.status_code == 200
        assert httpx.get(f"{url}/v1/contexts/d", headers=bearer("any-1")).status_code == 200
        assert httpx.get(f"{url}/v1/contexts/d", headers=bearer("any-2")).status_code == 404
        admin = httpx.get(f"{url}/admin/keys", headers=bearer("any-1"))
        assert admin.status_code == 404 and "master key" in admin.json()["error"]["message"]
        assert httpx.get(f"{url}/metrics").status_code == 200  # local: as before
