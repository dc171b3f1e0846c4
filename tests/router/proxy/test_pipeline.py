"""The request pipeline with a made-up format (`toy_format.py`): every stage a routed
endpoint shares works without knowing a field of chat's JSON.

The toy format is served the way `/v1/chat/completions` is, by one line in
`router.proxy.app.ROUTED`, and keeps the same adapter contract.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
from fake_upstream import FakeUpstream, json_reply, sse_reply
from fastapi.testclient import TestClient
from format_contract import FormatContract
from proxy_fakes import KEY_A
from toy_format import ToyFormat

from policies import Prices
from router.ladder import rung
from router.proxy import app as app_module
from router.proxy.routing import RouteDecision
from router.store.base import ContextRecord

AUTH = {"Authorization": f"Bearer {KEY_A}"}
ROUTED = {**AUTH, "X-Sleeptime-Routing": "policy"}
CHECKED = RouteDecision("enriched", rung="answer", check_answer="42", fallback_rung="steps")


def toy_body(query: str, context: str | None = None, *, stream: bool = False) -> bytes:
    body: dict[str, Any] = {"prompt": query, "stream": stream}
    if context is not None:
        body["background"] = context
    return json.dumps(body).encode()


class TestToyFormat(FormatContract):
    @pytest.fixture
    def adapter(self) -> ToyFormat:
        return ToyFormat()

    @pytest.fixture
    def sample(self) -> Any:
        return toy_body


class Scripted:
    def __init__(self) -> None:
        self.decision: RouteDecision | Exception = RouteDecision()

    def decide(self, tenant: str, context: ContextRecord | None, query: str) -> RouteDecision:
        if isinstance(self.decision, Exception):
            raise self.decision
        return self.decision


@pytest.fixture
def router() -> Scripted:
    return Scripted()


@pytest.fixture
def client(
    make_client: Callable[..., TestClient], router: Scripted, monkeypatch: pytest.MonkeyPatch
) -> TestClient:
    monkeypatch.setitem(app_module.ROUTED, "/v1/toy", ToyFormat)
    client = make_client(router=router)
    # A known context: the router is asked only about one (router.proxy.routable).
    assert client.post("/v1/contexts", json={"context": "Facts."}, headers=AUTH).status_code == 200
    return client


def ask(client: TestClient, **body: Any) -> Any:
    """A toy request that opted into routing."""
    return client.post("/v1/toy", json={"prompt": "How many?", **body}, headers=ROUTED)


def answer(text: str, out: int = 3) -> Any:
    return json_reply({"output": text, "model": "m", "usage": {"in": 7, "out": out}})


def record_of(client: TestClient, response: Any) -> Any:
    state = client.app.state.proxy  # type: ignore[attr-defined]
    state.records.writer.flush()
    tenant = state.tenants.identify(AUTH["Authorization"])
    return state.store.get_record(tenant, response.headers["x-request-id"])


def metric(client: TestClient, line: str) -> bool:
    return line in client.get("/metrics").text


def test_every_stage_for_a_format_it_never_saw(client: TestClient, fake: FakeUpstream) -> None:
    fake.enqueue(answer("It is 42"))
    response = ask(client, background="Some facts.")
    assert response.status_code == 200 and response.json()["output"] == "It is 42"
    assert response.headers["x-sleeptime-route"] == "full"
    assert response.headers["x-sleeptime-context-version"] == "1"
    sent = fake.requests[-1]
    assert sent.path == "/v1/toy" and sent.json["model"] == "m"  # the alias, resolved
    record = record_of(client, response)
    assert (record.route, record.status, record.model) == ("full", 200, "m")
    assert (record.prompt_tokens, record.completion_tokens) == (7, 3)
    assert record.cost == Prices().paper_cost(3) and record.context_id


def test_a_named_context_is_sighted(client: TestClient, fake: FakeUpstream) -> None:
    for _ in range(2):
        fake.enqueue(answer("42"))
        response = ask(client, background="Facts.", topic="doc-1")
        assert response.headers["x-sleeptime-context"] == "doc-1"
        assert "topic" not in fake.requests[-1].json  # the format's own key stays home
    state = client.app.state.proxy  # type: ignore[attr-defined]
    state.records.writer.flush()
    tenant = state.tenants.identify(AUTH["Authorization"])
    assert state.store.get_context(tenant, "doc-1").seen == 2


def test_a_failing_router_goes_full(
    client: TestClient, fake: FakeUpstream, router: Scripted
) -> None:
    router.decision = RuntimeError("a router bug")
    fake.enqueue(answer("42"))
    response = ask(client, model="m", background="Facts.")
    assert response.status_code == 200 and response.headers["x-sleeptime-route"] == "full"
    sent = {"prompt": "How many?", "model": "m", "background": "Facts."}
    assert fake.requests[-1].json == sent  # as sent
    assert metric(client, "sleeptime_router_fallbacks_total 1.0")


def test_a_cached_answer_calls_no_upstream(
    client: TestClient, fake: FakeUpstream, router: Scripted
) -> None:
    router.decision = RouteDecision("cached", answer="Answer 42")
    plain = ask(client, background="Facts.")
    assert plain.json()["output"] == "Answer 42" and plain.headers["x-sleeptime-route"] == "cached"
    streamed = ask(client, stream=True, background="Facts.")
    assert b'"delta": "Answer 42"' in streamed.content
    assert fake.requests == [] and record_of(client, streamed).completion_tokens == 2


def test_agreeing_voters_serve_the_cheap_answer(
    client: TestClient, fake: FakeUpstream, router: Scripted
) -> None:
    router.decision = CHECKED
    fake.enqueue(answer("Answer 42", out=2))
    response = ask(client, background="Facts.")
    assert response.headers["x-sleeptime-check"] == "agreed"
    assert response.headers["x-sleeptime-route"] == "enriched"
    assert [r.json["limit"] for r in fake.requests] == [rung("answer").max_tokens]
    assert metric(client, 'sleeptime_checks_total{outcome="agreed"} 1.0')


def test_disagreeing_voters_go_full_and_pay_for_both(
    client: TestClient, fake: FakeUpstream, router: Scripted
) -> None:
    router.decision = CHECKED
    fake.enqueue(answer("Answer 41", out=2), answer("Answer 42", out=5))
    response = ask(client, background="Facts.")
    assert response.headers["x-sleeptime-check"] == "disagreed"
    assert response.headers["x-sleeptime-route"] == "full"
    assert response.json()["usage"] == {"in": 14, "out": 7}
    assert "limit" not in fake.requests[-1].json  # the full answer: the client's own budget
    assert record_of(client, response).completion_tokens == 7


def test_an_attempt_cut_at_its_budget_goes_full(
    client: TestClient, fake: FakeUpstream, router: Scripted
) -> None:
    router.decision = RouteDecision("enriched", rung="brief")
    cut = {"output": "So far", "model": "m", "usage": {"in": 7, "out": 64}, "stopped": "limit"}
    fake.enqueue(json_reply(cut), answer("It is 42", out=90))
    response = ask(client, background="Facts.", limit=500)
    assert response.json()["output"] == "It is 42" and response.json()["usage"]["out"] == 154
    assert [r.json["limit"] for r in fake.requests] == [rung("brief").max_tokens, 500]
    assert response.headers["x-sleeptime-escalated"] == "length"
    assert metric(client, "sleeptime_escalations_total 1.0")


def test_a_stream_goes_through_the_formats_relay(client: TestClient, fake: FakeUpstream) -> None:
    events = [{"delta": "4"}, {"delta": "2"}, {"done": True, "usage": {"in": 5, "out": 2}}]
    fake.enqueue(sse_reply(events, ending="eof"))
    response = ask(client, stream=True)
    assert response.status_code == 200 and response.content.count(b"data: ") == 3
    record = record_of(client, response)
    assert (record.status, record.completion_tokens) == (200, 2)


def test_a_body_the_format_refuses_is_recorded(client: TestClient, fake: FakeUpstream) -> None:
    response = client.post("/v1/toy", json={"prompt": 3}, headers=AUTH)
    assert response.status_code == 400 and response.json()["error"]["param"] == "prompt"
    assert (record_of(client, response).status, fake.requests) == (400, [])


def test_the_per_key_limit_comes_first(client: TestClient, fake: FakeUpstream) -> None:
    state = client.app.state.proxy  # type: ignore[attr-defined]
    tenant = state.tenants.identify(AUTH["Authorization"])
    taken = [state.limits.enter(tenant) for _ in range(state.limits.max_inflight)]
    response = ask(client)
    assert response.status_code == 429 and response.headers["retry-after"] == "1"
    for _ in taken:
        state.limits.leave(tenant)
    assert fake.requests == [] and state.limits.inflight(tenant) == 0


def test_an_unknown_model_is_a_404(client: TestClient, fake: FakeUpstream) -> None:
    state = client.app.state.proxy  # type: ignore[attr-defined]
    state.models.allowed = ("m",)
    response = ask(client, model="other")
    assert response.status_code == 404 and response.json()["error"]["code"] == "model_not_found"
