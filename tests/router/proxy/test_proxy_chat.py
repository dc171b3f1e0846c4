"""The proxy's chat endpoint in front of a fake upstream: pass-through, streams, headers."""

from __future__ import annotations

import json
from collections.abc import Callable

from fake_upstream import (
    FakeUpstream,
    chunk_body,
    completion,
    json_reply,
    sse_reply,
    stream_reply,
    usage_body,
)
from fastapi.testclient import TestClient
from proxy_fakes import KEY_A

MESSAGES = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "2+2?"}]


def chat(client: TestClient, **body: object) -> object:
    payload = {"model": "m", "messages": MESSAGES, **body}
    return client.post(
        "/v1/chat/completions", json=payload, headers={"Authorization": f"Bearer {KEY_A}"}
    )


def events(text: str) -> list[str]:
    return [line[6:] for line in text.split("\n\n") if line.startswith("data: ")]


def test_pass_through_relays_the_upstreams_bytes(client: TestClient, fake: FakeUpstream) -> None:
    upstream = completion("4", usage=usage_body(12, 1, cached=8))
    fake.enqueue(upstream)
    response = chat(client, temperature=0.2, top_k=3, seed=7)
    assert response.status_code == 200
    assert response.content == upstream.body
    sent = fake.requests[0]
    assert sent.path == "/v1/chat/completions"
    assert json.loads(sent.body) == {
        "model": "m",
        "messages": MESSAGES,
        "temperature": 0.2,
        "top_k": 3,
        "seed": 7,
    }


def test_client_key_is_not_forwarded(client: TestClient, fake: FakeUpstream) -> None:
    fake.enqueue(completion("4"))
    chat(client)
    assert KEY_A not in json.dumps(fake.requests[0].headers)


def test_route_headers(client: TestClient, fake: FakeUpstream) -> None:
    fake.enqueue(completion("4"))
    headers = chat(client).headers
    assert headers["x-sleeptime-route"] == "full"
    assert headers["x-request-id"].startswith("req-")
    assert len(headers["x-sleeptime-context"]) == 16
    assert headers["x-sleeptime-context-version"] == "1"


def test_model_alias_maps_to_the_upstream_model(client: TestClient, fake: FakeUpstream) -> None:
    fake.enqueue(completion("4"), completion("4"))
    chat(client, model="sleeptime")
    client.post("/v1/chat/completions", json={"messages": MESSAGES})
    assert [r.json["model"] for r in fake.requests] == ["m", "m"]  # config's upstream_model


def test_model_alias_asks_the_upstream_when_unconfigured(
    make_client: Callable[..., TestClient], fake: FakeUpstream
) -> None:
    client = make_client(upstream_model="")
    fake.enqueue(json_reply({"object": "list", "data": [{"id": "first"}, {"id": "second"}]}))
    fake.enqueue(completion("4"), completion("4"))
    chat(client, model="sleeptime")
    chat(client, model="sleeptime")
    assert [r.path for r in fake.requests] == ["/v1/models", *["/v1/chat/completions"] * 2]
    assert fake.requests[2].json["model"] == "first"


def test_stream_relays_every_event(client: TestClient, fake: FakeUpstream) -> None:
    fake.enqueue(stream_reply(["Four", "."], usage=usage_body(12, 2)))
    response = chat(client, stream=True, stream_options={"include_usage": True})
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/event-stream")
    data = events(response.text)
    assert data[-1] == "[DONE]"
    chunks = [json.loads(d) for d in data[:-1]]
    assert (
        "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks if c["choices"])
        == "Four."
    )
    assert chunks[-1]["usage"]["completion_tokens"] == 2 and chunks[-1]["choices"] == []
    assert fake.requests[0].json["stream_options"] == {"include_usage": True}


def test_stream_usage_asked_for_records_is_not_shown(
    client: TestClient, fake: FakeUpstream
) -> None:
    fake.enqueue(stream_reply(["Four"], usage=usage_body(12, 1)))
    data = events(chat(client, stream=True).text)
    assert all("usage" not in json.loads(d) for d in data[:-1])
    assert fake.requests[0].json["stream_options"] == {"include_usage": True}
    metrics = client.get("/metrics").text
    assert 'sleeptime_tokens_total{kind="prompt"} 12.0' in metrics


def test_stream_cut_midway_ends_with_error_event_then_done(
    client: TestClient, fake: FakeUpstream
) -> None:
    fake.enqueue(stream_reply(["Fo", "ur"], ending="cut"))
    data = events(chat(client, stream=True).text)
    assert data[-1] == "[DONE]"
    error = json.loads(data[-2])["error"]
    assert error["code"] == "upstream_bad_response" and set(error) == {
        "message",
        "type",
        "param",
        "code",
    }
    # What came before the cut was relayed (how much of it depends on the timing of the cut).
    assert json.loads(data[0])["choices"][0]["delta"]["role"] == "assistant"


def test_finished_stream_without_done_gets_one(client: TestClient, fake: FakeUpstream) -> None:
    fake.enqueue(stream_reply(["Four"], ending="eof"))  # a finish chunk, then EOF
    data = events(chat(client, stream=True).text)
    assert data[-1] == "[DONE]" and "error" not in data[-2]


def test_stream_ending_before_its_finish_is_an_error(
    client: TestClient, fake: FakeUpstream
) -> None:
    fake.enqueue(sse_reply([chunk_body("Fo")], ending="eof"))
    data = events(chat(client, stream=True).text)
    assert json.loads(data[-2])["error"]["code"] == "upstream_bad_response" and data[-1] == "[DONE]"


def test_stream_stall_ends_with_timeout_event(
    make_client: Callable[..., TestClient], fake: FakeUpstream
) -> None:
    client = make_client(timeout_s=0.3)
    fake.enqueue(stream_reply(["a"], ending="stall", stall_s=3.0))
    data = events(chat(client, stream=True).text)
    assert json.loads(data[-2])["error"]["code"] == "upstream_timeout" and data[-1] == "[DONE]"


def test_metrics_count_requests_and_tokens(client: TestClient, fake: FakeUpstream) -> None:
    fake.enqueue(completion("4", usage=usage_body(10, 3)))
    chat(client)
    text = client.get("/metrics").text
    assert 'sleeptime_requests_total{route="full",status="200"} 1.0' in text
    assert 'sleeptime_tokens_total{kind="completion"} 3.0' in text
    assert "sleeptime_request_latency_seconds_bucket" in text


def test_models_and_health(client: TestClient, fake: FakeUpstream) -> None:
    fake.enqueue(json_reply({"object": "list", "data": [{"id": "m", "object": "model"}]}))
    assert client.get("/v1/models").json()["data"][0]["id"] == "m"
    assert client.get("/health").json() == {"status": "ok", "inflight": 0}
