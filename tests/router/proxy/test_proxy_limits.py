"""Per-key concurrency limits: one key's flood gets 429 + Retry-After; other keys go on."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from fake_upstream import FakeUpstream, completion, completion_body, json_reply, stream_reply
from proxy_fakes import config_for

from router.local_server import free_port
from router.proxy.app import create_app
from router.proxy.config import ProxyConfig
from router.proxy.limits import KeyLimits
from router.proxy.server import ServerThread

BODY = {"model": "m", "messages": [{"role": "user", "content": "hi"}]}


@pytest.fixture
def proxy(tmp_path: Path, fake: FakeUpstream) -> Iterator[ServerThread]:
    settings = config_for(tmp_path).settings.replace(upstream_url=fake.url)
    config = ProxyConfig.from_settings(settings, sleep_enabled=False, max_inflight_per_key=2)
    app = create_app(config)
    with ServerThread(app, free_port()) as server:
        yield server


def post(url: str, key: str, results: list[httpx.Response], **extra: object) -> None:
    headers = {"Authorization": f"Bearer {key}"}
    results.append(
        httpx.post(f"{url}/chat/completions", json={**BODY, **extra}, headers=headers, timeout=10)
    )


def test_a_flooding_key_gets_429_and_the_others_are_served(
    proxy: ServerThread, fake: FakeUpstream
) -> None:
    slow = json_reply(completion_body("slow"), delay_s=0.6)
    fake.enqueue(slow, slow, completion("other"))
    flood: list[httpx.Response] = []
    threads = [threading.Thread(target=post, args=(proxy.url, "key-a", flood)) for _ in range(2)]
    for thread in threads:
        thread.start()
    while len(fake.requests) < 2:  # both of key A's slots are taken upstream
        threading.Event().wait(0.01)
    refused: list[httpx.Response] = []
    post(proxy.url, "key-a", refused)
    other: list[httpx.Response] = []
    post(proxy.url, "key-b", other)
    for thread in threads:
        thread.join()
    assert [r.status_code for r in flood] == [200, 200]
    assert refused[0].status_code == 429 and refused[0].headers["retry-after"] == "1"
    error = refused[0].json()["error"]
    assert error["type"] == "rate_limit_error" and error["code"] == "too_many_concurrent_requests"
    assert (
        other[0].status_code == 200
        and other[0].json()["choices"][0]["message"]["content"] == "other"
    )
    after: list[httpx.Response] = []
    fake.enqueue(completion("again"))
    post(proxy.url, "key-a", after)  # slots are given back once answers are done
    assert after[0].status_code == 200


def test_a_finished_stream_gives_its_slot_back(proxy: ServerThread, fake: FakeUpstream) -> None:
    for _ in range(3):
        fake.enqueue(stream_reply(["a", "b"]))
        results: list[httpx.Response] = []
        post(proxy.url, "key-a", results, stream=True)
        assert results[0].status_code == 200 and b"[DONE]" in results[0].content
    fake.enqueue(completion("x"), completion("y"))
    results = []
    post(proxy.url, "key-a", results)
    post(proxy.url, "key-a", results)
    assert [r.status_code for r in results] == [200, 200]


def test_limits_count_per_tenant() -> None:
    limits = KeyLimits(2)
    assert limits.enter("a") and limits.enter("a") and not limits.enter("a")
    assert limits.enter("b") and limits.refused == 1
    limits.leave("a")
    assert limits.inflight("a") == 1 and limits.enter("a")
    limits.leave("b")
    assert limits.inflight("b") == 0
