"""A checked answer over HTTP: cheap answers on c' whose voters agree are served, else full.

The fake upstream answers by the budget it was sent (16 tokens: rung "answer",
64: "brief", 400: "steps"), so each test scripts agreement or disagreement and
sees every call the proxy made, with what each cost.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import replace

import pytest
from fake_upstream import FakeUpstream, Recorded, Reply, completion, error_reply, stream_reply
from fake_upstream import usage_body as usage
from fastapi.testclient import TestClient
from proxy_fakes import KEY_A

from router.ladder import rung
from router.proxy.routing import RouteDecision
from router.store.base import ContextRecord

DOC = "Janet's ducks lay 16 eggs per day. She eats 3 for breakfast and bakes with 4."
MESSAGES = [{"role": "system", "content": DOC}, {"role": "user", "content": "Eggs left?"}]
HEADERS = {
    "Authorization": f"Bearer {KEY_A}",
    "X-Sleeptime-Context": "doc",
    "X-Sleeptime-Routing": "policy",
}
CHECKED = RouteDecision("enriched", rung="answer", check_rung="brief", fallback_rung="steps")


class CheckedRouter:
    def __init__(self) -> None:
        self.decision = CHECKED

    def decide(self, tenant: str, context: ContextRecord | None, query: str) -> RouteDecision:
        learned = context is not None and context.has_learned
        return self.decision if learned else RouteDecision("full")


def by_budget(answer: str, brief: str | Reply, full: str = "16 - 3 - 4 = 9\nAnswer: 9"):
    """A fake upstream's fallback: the reply for each rung's budget."""

    def reply(request: Recorded) -> Reply:
        body = request.json
        budget = body.get("max_tokens")
        if budget == rung("answer").max_tokens:
            return completion(answer, usage=usage(120, 2))
        if budget == rung("brief").max_tokens:
            return brief if isinstance(brief, Reply) else completion(brief, usage=usage(130, 12))
        if body.get("stream"):
            return stream_reply(["16 - 3 - 4 = 9\n", "Answer: 9"], usage=usage(40, 150))
        return completion(full, usage=usage(40, 150))

    return reply


@pytest.fixture
def router() -> CheckedRouter:
    return CheckedRouter()


@pytest.fixture
def client(make_client: Callable[..., TestClient], router: CheckedRouter) -> TestClient:
    client = make_client(router=router, sleep_enabled=True)
    registered = client.post("/v1/contexts", json={"id": "doc", "context": DOC}, headers=HEADERS)
    assert registered.status_code in (200, 201, 202), registered.text
    deadline = time.monotonic() + 10
    while client.get("/v1/contexts/doc", headers=HEADERS).json().get("status") != "done":
        assert time.monotonic() < deadline, "the context was never learned"
        time.sleep(0.02)
    return client


def ask(client: TestClient, **extra: object):
    """As bench replay's client asks: its own budget is the full rung's."""
    body = {"model": "m", "messages": MESSAGES, "max_tokens": 400, **extra}
    return client.post("/v1/chat/completions", json=body, headers=HEADERS)


def record_of(client: TestClient, request_id: str):
    state = client.app.state.proxy  # type: ignore[attr-defined]
    state.records.writer.flush()
    return state.store.get_record(state.tenants.identify(f"Bearer {KEY_A}"), request_id)


def test_agreeing_cheap_answers_are_served_and_both_are_paid_for(
    client: TestClient, fake: FakeUpstream
) -> None:
    fake.fallback = by_budget("9", "Sixteen minus seven. Answer: 9")
    response = ask(client)
    assert response.status_code == 200
    assert response.json()["choices"][0]["message"]["content"] == "9"
    assert response.headers["x-sleeptime-route"] == "enriched"
    assert response.headers["x-sleeptime-rung"] == "answer"
    assert response.headers["x-sleeptime-check"] == "agreed"
    assert response.json()["usage"] == usage(250, 14) | {"total_tokens": 264}
    sent = [r.json for r in fake.requests if r.method == "POST"]
    assert sorted(s["max_tokens"] for s in sent) == [16, 64]  # no full answer was asked
    for s in sent:  # both on c': the notes go before the query
        assert any("16 - 3 - 4" in str(m["content"]) for m in s["messages"][:-1])
        assert not s.get("stream")
    record = record_of(client, response.headers["x-request-id"])
    assert (record.route, record.rung, record.completion_tokens) == ("enriched", "answer", 14)
    assert 'sleeptime_checks_total{outcome="agreed"} 1.0' in client.get("/metrics").text


def test_disagreeing_answers_go_full_on_the_clients_messages(
    client: TestClient, fake: FakeUpstream
) -> None:
    fake.fallback = by_budget("8", "Answer: 9")
    response = ask(client)
    assert response.json()["choices"][0]["message"]["content"].endswith("Answer: 9")
    assert response.headers["x-sleeptime-route"] == "full"
    assert response.headers["x-sleeptime-rung"] == "steps"
    assert response.headers["x-sleeptime-check"] == "disagreed"
    assert response.json()["usage"]["completion_tokens"] == 2 + 12 + 150
    full = [r.json for r in fake.requests if r.json and r.json.get("max_tokens") == 400]
    assert len(full) == 1
    assert full[0]["messages"][0] == MESSAGES[0] and len(full[0]["messages"]) == 2  # no notes
    assert full[0]["messages"][-1]["content"].endswith(rung("steps").instruction)
    record = record_of(client, response.headers["x-request-id"])
    assert (record.route, record.rung, record.completion_tokens) == ("full", "steps", 164)
    assert 'sleeptime_checks_total{outcome="disagreed"} 1.0' in client.get("/metrics").text


def test_a_failed_check_call_goes_full(client: TestClient, fake: FakeUpstream) -> None:
    fake.fallback = by_budget("9", error_reply(400, "bad request"))
    response = ask(client)
    assert response.status_code == 200 and response.headers["x-sleeptime-check"] == "disagreed"
    assert response.json()["usage"]["completion_tokens"] == 2 + 150  # the error cost nothing


def test_a_cut_off_answer_does_not_agree(client: TestClient, fake: FakeUpstream) -> None:
    """A brief answer stopped by its budget states no final number, whatever it ends with."""
    fake.fallback = by_budget("9", completion("16 - 3 - 4 = 9", finish_reason="length"))
    assert ask(client).headers["x-sleeptime-check"] == "disagreed"


def test_streams_get_the_served_answer_or_the_full_stream_with_all_usage(
    client: TestClient, fake: FakeUpstream
) -> None:
    fake.fallback = by_budget("9", "Answer: 9")
    agreed = ask(client, stream=True, stream_options={"include_usage": True})
    chunks = [json.loads(line[6:]) for line in agreed.text.split("\n\n") if line[6:7] == "{"]
    assert agreed.headers["x-sleeptime-check"] == "agreed" and agreed.text.endswith("[DONE]\n\n")
    assert "".join(c["choices"][0]["delta"].get("content", "") for c in chunks[:-1]) == "9"
    assert chunks[-1]["usage"]["completion_tokens"] == 2 + 12

    fake.fallback = by_budget("8", "Answer: 9")
    disagreed = ask(client, stream=True, stream_options={"include_usage": True})
    chunks = [json.loads(line[6:]) for line in disagreed.text.split("\n\n") if line[6:7] == "{"]
    assert disagreed.headers["x-sleeptime-route"] == "full"
    text = "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks if c["choices"])
    assert text.endswith("Answer: 9") and chunks[-1]["usage"]["completion_tokens"] == 2 + 12 + 150

    bare = ask(client, stream=True)  # usage not asked for: none sent, all of it recorded
    assert '"usage"' not in bare.text
    record = record_of(client, bare.headers["x-request-id"])
    assert record.completion_tokens == 164


def test_a_failing_check_falls_back_to_pass_through(
    client: TestClient, fake: FakeUpstream, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(*_: object, **__: object) -> bool:
        raise RuntimeError("a bug in the check")

    monkeypatch.setattr("router.proxy.checked.agree", broken)
    fake.fallback = by_budget("9", "Answer: 9")
    response = ask(client)
    assert response.status_code == 200 and response.headers["x-sleeptime-route"] == "full"
    assert fake.requests[-1].json["messages"] == MESSAGES  # as the client sent them
    assert "sleeptime_router_fallbacks_total 1.0" in client.get("/metrics").text


def test_the_anticipated_answer_alone_checks_one_cheap_call(
    client: TestClient, fake: FakeUpstream, router: CheckedRouter
) -> None:
    router.decision = replace(CHECKED, check_rung=None, check_answer="$9")
    fake.fallback = by_budget("9", "Answer: 9")
    agreed = ask(client)
    assert agreed.headers["x-sleeptime-check"] == "agreed"
    assert agreed.json()["choices"][0]["message"]["content"] == "9"
    assert [r.json["max_tokens"] for r in fake.requests if r.json] == [16]
    assert agreed.json()["usage"]["completion_tokens"] == 2

    fake.fallback = by_budget("8", "Answer: 9")
    disagreed = ask(client)
    assert disagreed.headers["x-sleeptime-check"] == "disagreed"
    assert disagreed.headers["x-sleeptime-route"] == "full"
    assert disagreed.json()["usage"]["completion_tokens"] == 2 + 150
    assert [r.json["max_tokens"] for r in fake.requests if r.json][1:] == [16, 400]


def test_three_voters_must_all_agree(
    client: TestClient, fake: FakeUpstream, router: CheckedRouter
) -> None:
    router.decision = replace(CHECKED, check_answer="8")
    fake.fallback = by_budget("9", "Answer: 9")  # both cheap answers say 9, anticipated 8
    response = ask(client)
    assert response.headers["x-sleeptime-check"] == "disagreed"
    assert response.json()["usage"]["completion_tokens"] == 2 + 12 + 150

    router.decision = replace(CHECKED, check_answer="9")
    assert ask(client).headers["x-sleeptime-check"] == "agreed"
