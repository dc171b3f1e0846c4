"""/v1/embeddings and /v1/responses over real HTTP: relayed byte for byte, metered.

The fake upstreams answer with bytes spaced oddly on purpose: a proxy that parsed and
re-encoded the answer would change them. Raw bytes are read with httpx; the real openai
client is driven through both endpoints as well.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fake_upstream import FakeUpstream, Reply, error_reply, raw_reply, sse_reply
from model_list_proxy import AUTH, client_for, record_of, serving

from router.proxy.server import ServerThread

EMBEDDING = (
    b'{"object": "list",  "data": [{"object": "embedding", "index": 0, "embedding": [0.5, -0.25]}],'
    b' "model": "embed-v3", "usage": {"prompt_tokens": 7, "total_tokens": 7}}'
)
RESPONSE = (
    b'{"id": "resp_1", "object": "response", "status": "completed", "model": "fast-v1",  '
    b'"output": [{"type": "message", "id": "msg_1", "role": "assistant", "status": "completed",'
    b' "content": [{"type": "output_text", "text": "hi there", "annotations": []}]}], '
    b'"usage": {"input_tokens": 11, "output_tokens": 4, "total_tokens": 15,'
    b' "input_tokens_details": {"cached_tokens": 3}}}'
)
EVENTS = (
    b'event: response.created\ndata: {"type": "response.created", "sequence_number": 0,'
    b' "response": {"id": "resp_1", "object": "response", "status": "in_progress",'
    b' "output": []}}\n\n',
    b'event: response.output_text.delta\ndata: {"type": "response.output_text.delta",'
    b' "sequence_number": 1, "item_id": "msg_1", "output_index": 0, "content_index": 0,'
    b' "delta": "hi"}\n\n',
    b'event: response.completed\ndata: {"type": "response.completed", "sequence_number": 2,'
    b' "response": {"id": "resp_1", "object": "response", "status": "completed", "output": [],'
    b' "usage": {"input_tokens": 9, "output_tokens": 2, "total_tokens": 11}}}\n\n',
)


def responses_stream(events: tuple[bytes, ...] = EVENTS, **kwargs: Any) -> Reply:
    return sse_reply(list(events), ending=kwargs.pop("ending", "end"), **kwargs)


@pytest.fixture
def backup() -> Iterator[FakeUpstream]:
    with FakeUpstream() as server:
        yield server


@pytest.fixture
def proxy(tmp_path: Path, fake: FakeUpstream, backup: FakeUpstream) -> Iterator[ServerThread]:
    models = [
        {
            "name": "embed",
            "aliases": ["text-embedding-3-small"],
            "upstream_url": fake.url,
            "upstream_model": "embed-v3",
            "fallbacks": ["embed-backup"],
        },
        {"name": "embed-backup", "upstream_url": backup.url},
        {
            "name": "fast",
            "aliases": ["sleeptime"],
            "upstream_url": fake.url,
            "upstream_model": "fast-v1",
            "fallbacks": ["slow"],
        },
        {"name": "slow", "upstream_url": backup.url, "upstream_model": "slow-v1"},
    ]
    with serving(tmp_path, models) as server:
        yield server


def post(proxy: ServerThread, path: str, body: dict[str, Any]) -> httpx.Response:
    return httpx.post(proxy.url + path, json=body, headers=AUTH, timeout=30)


def test_embeddings_pass_through_byte_for_byte_and_are_recorded(
    tmp_path: Path, proxy: ServerThread, fake: FakeUpstream
) -> None:
    fake.enqueue(raw_reply(EMBEDDING))
    answer = post(proxy, "/embeddings", {"model": "text-embedding-3-small", "input": "hello"})
    assert answer.status_code == 200
    assert answer.content == EMBEDDING
    assert fake.requests[0].path == "/v1/embeddings"
    assert fake.requests[0].json == {"model": "embed-v3", "input": "hello"}  # alias replaced
    assert (answer.headers["x-sleeptime-route"], answer.headers["x-sleeptime-model"]) == (
        "pass",
        "embed",
    )
    record = record_of(tmp_path, answer.headers["x-request-id"])
    assert (record["route"], record["model"], record["status"]) == ("pass", "embed", 200)
    assert (record["prompt_tokens"], record["completion_tokens"]) == (7, 0)


def test_embeddings_fall_back_on_a_server_error(
    tmp_path: Path, proxy: ServerThread, fake: FakeUpstream, backup: FakeUpstream
) -> None:
    fake.enqueue(error_reply(500, "kaput"))
    backup.enqueue(raw_reply(EMBEDDING))
    answer = post(proxy, "/embeddings", {"model": "embed", "input": ["a", "b"]})
    assert answer.content == EMBEDDING
    assert backup.requests[0].json == {"model": "embed-backup", "input": ["a", "b"]}
    assert answer.headers["x-sleeptime-model"] == "embed-backup"
    assert record_of(tmp_path, answer.headers["x-request-id"])["model"] == "embed-backup"


def test_a_response_passes_through_with_its_usage_recorded(
    tmp_path: Path, proxy: ServerThread, fake: FakeUpstream
) -> None:
    fake.enqueue(raw_reply(RESPONSE))
    answer = post(proxy, "/responses", {"input": "hi", "store": False})  # no model: the default
    assert answer.content == RESPONSE
    assert fake.requests[0].path == "/v1/responses"
    assert fake.requests[0].json == {"input": "hi", "store": False, "model": "fast-v1"}
    record = record_of(tmp_path, answer.headers["x-request-id"])
    tokens = (record["prompt_tokens"], record["completion_tokens"], record["cached_tokens"])
    assert (record["route"], record["model"], tokens) == ("pass", "fast", (11, 4, 3))


def test_a_streamed_response_is_relayed_event_for_event(
    tmp_path: Path, proxy: ServerThread, fake: FakeUpstream
) -> None:
    fake.enqueue(responses_stream())
    body = {"model": "sleeptime", "input": "hi", "stream": True}
    with httpx.stream("POST", proxy.url + "/responses", json=body, headers=AUTH) as answer:
        relayed = answer.read()
        headers = answer.headers
    assert headers["content-type"].startswith("text/event-stream")
    assert relayed == b"".join(EVENTS)  # no [DONE] added: Responses streams end without one
    record = record_of(tmp_path, headers["x-request-id"])
    assert (record["status"], record["prompt_tokens"], record["completion_tokens"]) == (200, 9, 2)


def test_a_stream_that_cannot_open_falls_back(
    tmp_path: Path, proxy: ServerThread, fake: FakeUpstream, backup: FakeUpstream
) -> None:
    fake.enqueue(error_reply(503, "overloaded"))
    backup.enqueue(responses_stream())
    body = {"model": "fast", "input": "hi", "stream": True}
    with httpx.stream("POST", proxy.url + "/responses", json=body, headers=AUTH) as answer:
        relayed = answer.read()
        request_id = answer.headers["x-request-id"]
    assert relayed == b"".join(EVENTS)
    assert backup.requests[0].json["model"] == "slow-v1"
    assert record_of(tmp_path, request_id)["model"] == "slow"


def test_a_stream_cut_midway_ends_with_an_error_event(
    tmp_path: Path, proxy: ServerThread, fake: FakeUpstream
) -> None:
    fake.enqueue(responses_stream(EVENTS[:2], ending="cut"))
    body = {"model": "fast", "input": "hi", "stream": True}
    with httpx.stream("POST", proxy.url + "/responses", json=body, headers=AUTH) as answer:
        relayed = answer.read()
        request_id = answer.headers["x-request-id"]
    assert relayed.startswith(EVENTS[0])  # what arrived before the cut (aiohttp may drop
    # the last event read with the broken chunk)
    assert b'event: error\ndata: {"type": "error", "code": "upstream_bad_response"' in relayed
    assert record_of(tmp_path, request_id)["status"] == 502


def test_a_client_that_leaves_a_stream_is_recorded_499(
    tmp_path: Path, proxy: ServerThread, fake: FakeUpstream
) -> None:
    fake.enqueue(responses_stream(EVENTS[:1], ending="stall", stall_s=10.0))
    body = {"model": "fast", "input": "hi", "stream": True}
    with httpx.stream("POST", proxy.url + "/responses", json=body, headers=AUTH) as answer:
        first = next(answer.iter_raw())
        request_id = answer.headers["x-request-id"]
    assert first == EVENTS[0]
    record = record_of(tmp_path, request_id)
    assert (record["status"], record["error_code"]) == (499, "client_closed")


def test_an_unknown_model_is_404_and_calls_no_upstream(
    proxy: ServerThread, fake: FakeUpstream, backup: FakeUpstream
) -> None:
    answer = post(proxy, "/embeddings", {"model": "ada", "input": "x"})
    assert answer.status_code == 404
    assert answer.json()["error"]["code"] == "model_not_found"
    assert fake.requests == backup.requests == []


def test_a_body_that_is_not_a_request_is_400_before_any_upstream_call(
    proxy: ServerThread, fake: FakeUpstream
) -> None:
    assert post(proxy, "/responses", {"model": 5, "input": "x"}).status_code == 400
    assert post(proxy, "/responses", {"input": "x", "stream": "yes"}).status_code == 400
    refused = httpx.post(proxy.url + "/embeddings", content=b'{"input": 1', headers=AUTH)
    assert refused.status_code in (400, 415)
    assert fake.requests == []


def test_the_openai_client_works_through_both(
    proxy: ServerThread, fake: FakeUpstream, backup: FakeUpstream
) -> None:
    fake.enqueue(raw_reply(EMBEDDING), responses_stream())
    client = client_for(proxy)
    embedded = client.embeddings.create(model="embed", input="hello", encoding_format="float")
    assert embedded.data[0].embedding == [0.5, -0.25]
    events = list(client.responses.create(model="fast", input="hi", stream=True))
    assert [e.type for e in events] == [
        "response.created",
        "response.output_text.delta",
        "response.completed",
    ]


def test_metrics_count_pass_through_requests(proxy: ServerThread, fake: FakeUpstream) -> None:
    fake.enqueue(raw_reply(EMBEDDING))
    post(proxy, "/embeddings", {"model": "embed", "input": "x"})
    metrics = httpx.get(proxy.url.removesuffix("/v1") + "/metrics", headers=AUTH).text
    assert 'sleeptime_requests_total{route="pass",status="200"} 1.0' in metrics
