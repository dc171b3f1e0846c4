"""Request bodies over real HTTP: media type, one canonical reading, nesting, oversized
uploads that clients which upload first still read the 413 of."""

from __future__ import annotations

import asyncio
import contextlib
import http.client
import json
import sqlite3
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import httpx
import pytest
from fake_upstream import FakeUpstream, completion
from proxy_fakes import config_for
from raw_http import KEY, connect, error_of, head, read_until_closed, status_of

from router.local_server import free_port
from router.proxy import bodies
from router.proxy.api_errors import ApiError
from router.proxy.app import create_app
from router.proxy.config import ProxyConfig
from router.proxy.server import ServerThread
from router.store import open_store

LIMIT = 4_000_000
GOOD = {"model": "m", "messages": [{"role": "user", "content": "hi"}]}
JSON = {"Content-Type": "application/json", "Authorization": KEY}


@pytest.fixture
def proxy(tmp_path: Path, fake: FakeUpstream) -> Iterator[ServerThread]:
    settings = config_for(tmp_path).settings.replace(
        upstream_url=fake.url, max_body_bytes=LIMIT, body_timeout_s=10.0
    )
    with contextlib.closing(open_store(tmp_path / "records.db")) as store:
        app = create_app(ProxyConfig.from_settings(settings, sleep_enabled=False), store=store)
        with ServerThread(app, free_port()) as server:
            server.app = app  # type: ignore[attr-defined]
            yield server


def post(proxy: ServerThread, content: bytes, path: str = "/chat/completions", **headers: str):
    return httpx.post(
        f"{proxy.url}{path}", content=content, headers={**JSON, **headers}, timeout=30
    )


def assert_error(response: httpx.Response, status: int, code: str) -> None:
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert set(error) == {"message", "type", "param", "code"} and error["code"] == code


def still_serving(proxy: ServerThread, fake: FakeUpstream) -> None:
    fake.enqueue(completion("fine"))
    assert post(proxy, json.dumps(GOOD).encode()).status_code == 200


@pytest.mark.parametrize(
    "content_type",
    [
        "text/plain",
        "text/plain;charset=UTF-8",
        "application/x-www-form-urlencoded",
        "multipart/form-data; boundary=x",
        "application/json; charset=utf-16",
        "application/jsonx",
        "",
    ],
)
@pytest.mark.parametrize("path", ["/chat/completions", "/contexts"])
def test_anything_but_json_is_415(
    proxy: ServerThread, fake: FakeUpstream, content_type: str, path: str
) -> None:
    """A browser's "simple" request (text/plain, form) is never served."""
    headers = {"Authorization": KEY}
    if content_type:
        headers["Content-Type"] = content_type
    body = json.dumps({**GOOD, "context": "c"}).encode()
    response = httpx.post(f"{proxy.url}{path}", content=body, headers=headers)
    assert_error(response, 415, "unsupported_media_type")
    assert fake.requests == []


@pytest.mark.parametrize(
    "content_type",
    ["application/json", "Application/JSON; charset=UTF-8", 'application/json;charset="utf-8"'],
)
def test_json_with_a_utf8_charset_is_served(
    proxy: ServerThread, fake: FakeUpstream, content_type: str
) -> None:
    fake.enqueue(completion("fine"))
    assert (
        post(proxy, json.dumps(GOOD).encode(), **{"Content-Type": content_type}).status_code == 200
    )


REFUSED = {
    "BOM": b"\xef\xbb\xbf" + json.dumps(GOOD).encode(),
    "UTF-16": json.dumps(GOOD).encode("utf-16"),
    "duplicated messages": b'{"model": "m", "messages": [{"role": "user", "content": "a"}], '
    b'"messages": [{"role": "user", "content": "b"}]}',
    "duplicate key in a message": b'{"model": "m", "messages": [{"role": "user", '
    b'"content": "a", "role": "system"}]}',
    "lone surrogate": b'{"model": "m", "messages": [{"role": "user", "content": "\\udead"}]}',
    "nested 65 deep": json.dumps({**GOOD, "x": json.loads("[" * 63 + "{}" + "]" * 63)}).encode(),
}


@pytest.mark.parametrize("name", REFUSED)
def test_a_body_read_two_ways_is_refused(
    proxy: ServerThread, fake: FakeUpstream, name: str
) -> None:
    assert_error(post(proxy, REFUSED[name]), 400, "invalid_json")
    assert fake.requests == []
    still_serving(proxy, fake)


def test_json_nested_2000_deep_is_a_400_recorded_and_counted(
    proxy: ServerThread, fake: FakeUpstream, tmp_path: Path
) -> None:
    """It was a 500 that reached neither the metrics nor the records."""
    deep = b'{"model": "m", "messages": [{"role": "user", "content": "x"}], "x": ' + (
        b"[" * 2000 + b"]" * 2000 + b"}"
    )
    response = post(proxy, deep)
    assert_error(response, 400, "invalid_json")
    proxy.app.state.proxy.records.writer.flush()  # type: ignore[attr-defined]
    with contextlib.closing(sqlite3.connect(tmp_path / "records.db")) as db:
        rows = db.execute(
            "SELECT status, error_code FROM requests WHERE request_id = ?",
            (response.headers["x-request-id"],),
        ).fetchall()
    assert rows == [(400, "invalid_json")]
    metrics = httpx.get(f"http://{proxy.host}:{proxy.port}/metrics", headers={"Authorization": KEY})
    assert 'status="400"' in metrics.text
    still_serving(proxy, fake)


def test_the_upstream_gets_the_bytes_that_were_validated(
    proxy: ServerThread, fake: FakeUpstream
) -> None:
    raw = b'{ "messages" : [ {"role":"user","content":"caf\\u00e9 \xe2\x9c\x93"} ],"model":"m" }'
    fake.enqueue(completion("fine"))
    assert post(proxy, raw).status_code == 200
    assert fake.requests[0].body == raw


def body_of(size: int) -> bytes:
    return json.dumps({**GOOD, "messages": [{"role": "user", "content": "x" * size}]}).encode()


def urllib_post(url: str, data: Any, headers: dict[str, str]) -> tuple[int, dict[str, Any], str]:
    request = urllib.request.Request(url, data=data, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, json.loads(response.read()), ""
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read()), error.headers.get("connection", "")


def test_urllib_uploading_twice_the_limit_reads_the_413(
    proxy: ServerThread, fake: FakeUpstream
) -> None:
    """urllib sends `Connection: close` and the whole body before it reads: without the
    drain it saw a reset (measured: 16 MB against 8 MB)."""
    status, body, connection = urllib_post(
        f"{proxy.url}/chat/completions", body_of(2 * LIMIT), JSON
    )
    assert status == 413 and body["error"]["code"] == "body_too_large"
    assert connection == "close"
    still_serving(proxy, fake)


def test_urllib_chunked_upload_past_the_limit_reads_the_413(
    proxy: ServerThread, fake: FakeUpstream
) -> None:
    data = body_of(2 * LIMIT)
    chunks = iter([data[i : i + 65536] for i in range(0, len(data), 65536)])
    headers = {**JSON, "Transfer-Encoding": "chunked"}
    status, body, _ = urllib_post(f"{proxy.url}/chat/completions", chunks, headers)
    assert status == 413 and body["error"]["code"] == "body_too_large"
    still_serving(proxy, fake)


@pytest.mark.parametrize("chunked", [False, True])
def test_http_client_uploading_twice_the_limit_reads_the_413(
    proxy: ServerThread, fake: FakeUpstream, chunked: bool
) -> None:
    data = body_of(2 * LIMIT)
    connection = http.client.HTTPConnection(proxy.host, proxy.port, timeout=30)
    body: Any = iter([data[i : i + 65536] for i in range(0, len(data), 65536)]) if chunked else data
    connection.request(
        "POST", "/v1/chat/completions", body=body, headers=JSON, encode_chunked=chunked
    )
    response = connection.getresponse()
    assert response.status == 413 and response.getheader("connection") == "close"
    assert json.loads(response.read())["error"]["code"] == "body_too_large"
    connection.close()
    still_serving(proxy, fake)


def test_an_oversized_body_waiting_for_100_continue_is_refused_unread(
    proxy: ServerThread, fake: FakeUpstream
) -> None:
    """The client sends nothing until told to continue, and is told 413 instead."""
    headers = {"Content-Type": "application/json", "Expect": "100-continue"}
    with connect(proxy) as sock:
        sock.sendall(
            head("POST", "/v1/chat/completions", Content_Length=str(10 * LIMIT), **headers)
        )
        response, waited = read_until_closed(sock, 5)
    assert status_of(response) == 413 and error_of(response)["code"] == "body_too_large"
    assert not response.startswith(b"HTTP/1.1 100") and waited < 2
    still_serving(proxy, fake)


def test_health_stays_quick_while_large_bodies_are_parsed(
    proxy: ServerThread, fake: FakeUpstream
) -> None:
    """Bodies past `parse_off_loop_bytes` are parsed in a thread; /health answers meanwhile."""
    big = body_of(LIMIT - 1000)
    fake.fallback = completion("fine")  # type: ignore[assignment]
    done = threading.Event()

    def upload() -> None:
        while not done.is_set():
            post(proxy, big)

    uploaders = [threading.Thread(target=upload) for _ in range(4)]
    for thread in uploaders:
        thread.start()
    try:
        timings = []
        for _ in range(20):
            response = httpx.get(f"http://{proxy.host}:{proxy.port}/health", timeout=5)
            timings.append(response.elapsed.total_seconds())
    finally:
        done.set()
        for thread in uploaders:
            thread.join()
    assert sorted(timings)[len(timings) // 2] < 0.25


def request_with(rules: bodies.BodyRules) -> Any:
    return SimpleNamespace(app=SimpleNamespace(state=SimpleNamespace(bodies=rules)))


def test_large_bodies_are_parsed_in_a_thread_under_the_apps_nesting_limit() -> None:
    asyncio.run(parse_two_ways())


async def parse_two_ways() -> None:
    seen: list[tuple[str, int]] = []

    def parse(raw: bytes) -> dict[str, Any]:
        seen.append((threading.current_thread().name, len(raw)))
        return bodies.load_object(raw)

    request = request_with(bodies.BodyRules(max_depth=3, off_loop_bytes=100))
    main = threading.current_thread().name
    assert await bodies.parse_body(request, b'{"a": [{}]}', parse) == {"a": [{}]}
    assert await bodies.parse_body(request, b'{"a": "' + b"x" * 200 + b'"}', parse)
    assert seen[0][0] == main and seen[1][0] != main
    with pytest.raises(ApiError, match="deeper than 3"):
        await bodies.parse_body(request, b'{"a": [{"b": []}]}', parse)
    with pytest.raises(ApiError, match="deeper than 3"):
        await bodies.parse_body(request, b'{"a": [{"b": []}], "p": "' + b"x" * 200 + b'"}', parse)


@pytest.mark.parametrize(
    "value",
    [
        "application/json",
        "APPLICATION/JSON",
        "application/json; charset=utf-8",
        "application/json ;charset=UTF8",
    ],
)
def test_media_types_accepted(value: str) -> None:
    bodies.check_media_type(value)


@pytest.mark.parametrize(
    "value",
    [
        None,
        "",
        "text/plain",
        "application/json; charset=latin-1",
        "application/json; x=1",
        "application/json-patch+json",
        "text/json",
    ],
)
def test_media_types_refused(value: str | None) -> None:
    with pytest.raises(ApiError) as refused:
        bodies.check_media_type(value)
    assert refused.value.status == 415


def test_large_bodies_past_the_budget_get_503_and_small_ones_go_on(
    tmp_path: Path, fake: FakeUpstream, monkeypatch: pytest.MonkeyPatch
) -> None:
    """One body's worth of budget: a slow upload holds it, the next large body is refused
    with 503 + Retry-After after the wait, a small body skips the budget, and once the slow
    upload's deadline frees the budget the large body is served."""
    monkeypatch.setattr(bodies, "BUDGET_BODIES", 1)
    monkeypatch.setattr(bodies, "BUDGET_WAIT_S", 0.3)
    limit = 100_000
    settings = config_for(tmp_path).settings.replace(
        upstream_url=fake.url, max_body_bytes=limit, parse_off_loop_bytes=1000, body_timeout_s=1.5
    )
    app = create_app(ProxyConfig.from_settings(settings, sleep_enabled=False))
    fake.fallback = completion("fine")  # type: ignore[assignment]
    with ServerThread(app, free_port()) as proxy, connect(proxy) as slow:
        slow.sendall(head("POST", "/v1/chat/completions", Content_Length=str(limit), **JSON))
        slow.sendall(b'{"model": "m", ')  # and no more: it holds the whole budget
        time.sleep(0.2)
        large = body_of(50_000)
        busy = post(proxy, large)
        assert_error(busy, 503, "bodies_busy")
        assert busy.headers["retry-after"] == "1" and busy.headers["connection"] == "close"
        assert post(proxy, json.dumps(GOOD).encode()).status_code == 200
        response, _ = read_until_closed(slow, 5)
        assert status_of(response) == 408
        assert post(proxy, large).status_code == 200
        assert app.state.bodies.budget.free == limit
