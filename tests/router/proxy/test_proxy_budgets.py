"""Per-key limits over real HTTP: requests and tokens per minute, a budget in dollars.

The fake upstream's answers use 5 prompt and 1 completion token. Prices are set on the
running app (`state.models.prices`), as the model list will; every refusal is a 429 in
OpenAI's shape before the body is read and before any upstream call.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from fake_upstream import FakeUpstream, healthy
from proxy_fakes import FakeSleepBackend, config_for

from policies.cost import ModelPrice
from router.local_server import free_port
from router.proxy.app import create_app
from router.proxy.config import ProxyConfig
from router.proxy.server import ServerThread

MASTER = "sk-master-budgets"
BODY = {"model": "m", "messages": [{"role": "user", "content": "hi"}]}
# $100k per million tokens: 5 prompt + 1 completion = $0.50 + $0.10 a request
PRICE = ModelPrice(input=100_000.0, output=100_000.0, sleep_discount=0.5)


@contextmanager
def running(
    tmp_path: Path, fake: FakeUpstream, sleeper: FakeSleepBackend | None = None, **settings: Any
) -> Iterator[tuple[ServerThread, Any]]:
    fake.fallback = healthy
    base = config_for(tmp_path).settings.replace(
        upstream_url=fake.url, master_key=MASTER, **settings
    )
    config = ProxyConfig.from_settings(base, sleep_enabled=sleeper is not None)
    app = create_app(config, sleep_backend=sleeper)
    with ServerThread(app, free_port()) as server:
        app.state.proxy.models.prices = {"m": PRICE}
        yield server, app.state.proxy


def root(server: ServerThread) -> str:
    return server.url.removesuffix("/v1")


def create(server: ServerThread, name: str, **limits: Any) -> str:
    headers = {"Authorization": f"Bearer {MASTER}"}
    made = httpx.post(f"{root(server)}/admin/keys", json={"name": name, **limits}, headers=headers)
    assert made.status_code == 201, made.text
    return str(made.json()["key"])


def tenant_of(server: ServerThread, key: str) -> str:
    """A client key's tenant: "k-" and its id, found by the prefix lists show."""
    headers = {"Authorization": f"Bearer {MASTER}"}
    listed = httpx.get(f"{root(server)}/admin/keys", headers=headers).json()["data"]
    return "k-" + next(k["id"] for k in listed if k["prefix"] == key[:7] + "…")


def chat(server: ServerThread, key: str) -> httpx.Response:
    headers = {"Authorization": f"Bearer {key}"}
    return httpx.post(f"{server.url}/chat/completions", json=BODY, headers=headers, timeout=10)


def assert_429(response: httpx.Response, code: str) -> dict:
    assert response.status_code == 429, response.text
    error = response.json()["error"]
    assert set(error) == {"message", "type", "param", "code"} and error["code"] == code
    return error


def test_requests_per_minute(tmp_path: Path, fake: FakeUpstream) -> None:
    with running(tmp_path, fake) as (server, _):
        limited, other = create(server, "limited", rpm=2), create(server, "other", rpm=2)
        assert [chat(server, limited).status_code for _ in range(2)] == [200, 200]
        calls = len(fake.requests)
        refused = chat(server, limited)
        error = assert_429(refused, "rate_limit_exceeded")
        assert error["type"] == "rate_limit_error" and "2 requests per minute" in error["message"]
        assert 1 <= int(refused.headers["retry-after"]) <= 60
        assert len(fake.requests) == calls  # refused before any upstream call
        assert chat(server, other).status_code == 200  # another key has its own minute


def test_tokens_per_minute_count_finished_requests(tmp_path: Path, fake: FakeUpstream) -> None:
    with running(tmp_path, fake) as (server, _):
        key = create(server, "tokens", tpm=10)
        assert [chat(server, key).status_code for _ in range(2)] == [200, 200]  # 0, then 6 < 10
        error = assert_429(chat(server, key), "rate_limit_exceeded")  # 12 >= 10
        assert "10 tokens per minute" in error["message"]


def test_settings_default_rates_apply_to_keys_without_their_own(
    tmp_path: Path, fake: FakeUpstream
) -> None:
    with running(tmp_path, fake, default_rpm=1) as (server, _):
        own, default = create(server, "own", rpm=3), create(server, "default")
        assert [chat(server, own).status_code for _ in range(3)] == [200] * 3
        assert [chat(server, default).status_code for _ in range(2)] == [200, 429]


def test_budget_spend_records_metrics_and_restart(tmp_path: Path, fake: FakeUpstream) -> None:
    with running(tmp_path, fake) as (server, state):
        key = create(server, "alice", budget_usd=1.0)
        answered = [chat(server, key) for _ in range(2)]  # $0.60 each: 0, then 0.60 < 1.00
        assert [r.status_code for r in answered] == [200, 200]
        calls = len(fake.requests)
        error = assert_429(chat(server, key), "insufficient_quota")
        assert error["type"] == "insufficient_quota" and "$1" in error["message"]
        assert len(fake.requests) == calls
        master = {"Authorization": f"Bearer {MASTER}"}
        metrics = httpx.get(f"{root(server)}/metrics", headers=master).text
        spent = re.search(r'sleeptime_spend_usd_total\{key="alice",kind="request"\} (\S+)', metrics)
        assert spent is not None and float(spent.group(1)) == pytest.approx(1.2)
        assert key not in metrics
        listed = httpx.get(f"{root(server)}/admin/keys", headers=master).json()["data"]
        assert listed[0]["spend_usd"] == pytest.approx(1.2)
        state.records.writer.flush()
        record = state.store.get_record(tenant_of(server, key), answered[0].headers["x-request-id"])
        assert record is not None and record.cost_usd == pytest.approx(0.6)
    with running(tmp_path, fake) as (server, _):  # spend survives a restart (from the store)
        assert_429(chat(server, key), "insufficient_quota")


def test_unpriced_model_costs_nothing_and_no_budget_runs_out(
    tmp_path: Path, fake: FakeUpstream
) -> None:
    with running(tmp_path, fake) as (server, state):
        state.models.prices = {}
        key = create(server, "free", budget_usd=0.01)
        assert [chat(server, key).status_code for _ in range(3)] == [200] * 3


def wait_status(server: ServerThread, key: str, context_id: str, status: str) -> dict:
    headers = {"Authorization": f"Bearer {key}"}
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        view = httpx.get(f"{server.url}/contexts/{context_id}", headers=headers).json()
        if view.get("status") == status:
            return dict(view)
        time.sleep(0.05)
    raise AssertionError(f"{context_id} never reached {status}: {view}")


def test_sleep_work_is_charged_to_its_key_at_the_sleep_price(
    tmp_path: Path, fake: FakeUpstream, sleeper: FakeSleepBackend
) -> None:
    """The fake sleep backend spends 100 prompt + 40 completion tokens a pass."""
    with running(tmp_path, fake, sleeper) as (server, state):
        key = create(server, "sleepy", budget_usd=100.0)
        headers = {"Authorization": f"Bearer {key}"}
        body = {"id": "doc", "context": "Janet's ducks lay 16 eggs per day."}
        assert httpx.post(f"{server.url}/contexts", json=body, headers=headers).is_success
        wait_status(server, key, "doc", "done")
        tenant = tenant_of(server, key)
        expected = (100 + 40) * 100_000.0 / 1e6 * 0.5  # $7.00 at half price
        assert state.spend.of(tenant) == pytest.approx(expected)
        state.records.writer.flush()
        assert state.store.spend_by_tenant()[tenant] == pytest.approx(expected)


def test_a_key_over_budget_starts_no_sleep_work(
    tmp_path: Path, fake: FakeUpstream, sleeper: FakeSleepBackend
) -> None:
    with running(tmp_path, fake, sleeper, max_inflight_for_sleep=-1) as (server, state):
        key = create(server, "broke", budget_usd=5.0)
        headers = {"Authorization": f"Bearer {key}"}
        body = {"id": "doc", "context": "Janet's ducks lay 16 eggs per day."}
        assert httpx.post(f"{server.url}/contexts", json=body, headers=headers).is_success
        tenant = tenant_of(server, key)
        state.spend.add(tenant, 5.0)  # spent elsewhere while its job waited
        state.inflight.max_for_sleep = 0  # the upstream is idle: the worker may start
        deadline = time.monotonic() + 10
        while (context := state.store.get_context(tenant, "doc")).sleep_status != "failed":
            assert time.monotonic() < deadline, context
            time.sleep(0.05)
        assert "budget" in (context.error or "") and sleeper.calls == []
        assert_429(chat(server, key), "insufficient_quota")


def test_store_files_of_a_running_proxy_are_private(tmp_path: Path, fake: FakeUpstream) -> None:
    with running(tmp_path, fake) as (server, _):
        key = create(server, "files")
        assert chat(server, key).status_code == 200
        database = config_for(tmp_path).database
        journal = config_for(tmp_path).journal_dir
        files = [database, *database.parent.glob(database.name + "-*"), *journal.iterdir()]
        assert files and {f.stat().st_mode & 0o777 for f in files} == {0o600}
        assert journal.stat().st_mode & 0o777 == 0o700
    assert key.encode() not in config_for(tmp_path).database.read_bytes()  # only its hash
