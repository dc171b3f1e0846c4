"""Routing hooks: decisions explained in headers; a failing router falls back to pass-through."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable
from pathlib import Path

from fake_upstream import FakeUpstream, completion, usage_body
from fastapi.testclient import TestClient
from proxy_fakes import KEY_A, KEY_B, QUICK, config_for

from router.answering import NOTES_HINT
from router.ladder import rung
from router.proxy.app import create_app
from router.proxy.formats.chat_rewrite import enrich
from router.proxy.routing import EnrichedRouter, RouteDecision
from router.store import ContextRecord, SqliteStore
from router.upstream import Forwarder

MESSAGES = [{"role": "system", "content": "A text."}, {"role": "user", "content": "Q?"}]


class Scripted:
    def __init__(self, decision: RouteDecision | Exception) -> None:
        self.decision = decision
        self.seen: list[tuple[str, ContextRecord | None, str]] = []

    def decide(self, tenant: str, context: ContextRecord | None, query: str) -> RouteDecision:
        self.seen.append((tenant, context, query))
        if isinstance(self.decision, Exception):
            raise self.decision
        return self.decision


def post(client: TestClient, stream: bool = False, key: str = KEY_A) -> object:
    """A request that opted into routing, on MESSAGES' context."""
    body = {"model": "m", "messages": MESSAGES, "stream": stream}
    headers = {"Authorization": f"Bearer {key}", "X-Sleeptime-Routing": "policy"}
    return client.post("/v1/chat/completions", json=body, headers=headers)


def known(client: TestClient, *keys: str) -> TestClient:
    """MESSAGES' context registered for each key: the router is asked only about a known one."""
    for key in keys or (KEY_A,):
        registered = client.post(
            "/v1/contexts", json={"context": "A text."}, headers={"Authorization": f"Bearer {key}"}
        )
        assert registered.status_code == 200, registered.text
    return client


def test_router_sees_tenant_context_and_query(
    make_client: Callable[..., TestClient], fake: FakeUpstream
) -> None:
    router = Scripted(RouteDecision("full", scores={"p": 0.25}, reason="test"))
    client = known(make_client(router=router))
    fake.enqueue(completion("a"))
    response = post(client)
    tenant, context, query = router.seen[0]
    assert tenant.startswith("t-") and query == "Q?"
    assert context is not None and context.text == "A text."
    assert json.loads(response.headers["x-sleeptime-scores"]) == {"p": 0.25}
    assert " " not in response.headers["x-sleeptime-scores"]


def test_router_error_falls_back_to_pass_through(
    make_client: Callable[..., TestClient], fake: FakeUpstream
) -> None:
    client = known(make_client(router=Scripted(RuntimeError("estimator crashed"))))
    fake.enqueue(completion("a"))
    response = post(client)
    assert response.status_code == 200 and response.headers["x-sleeptime-route"] == "full"
    assert fake.requests[0].json["messages"] == MESSAGES
    assert "sleeptime_router_fallbacks_total 1.0" in client.get("/metrics").text


def test_impossible_enrichment_falls_back(
    make_client: Callable[..., TestClient], fake: FakeUpstream
) -> None:
    client = known(make_client(router=Scripted(RouteDecision("enriched"))))  # nothing learned
    fake.enqueue(completion("a"))
    assert post(client).headers["x-sleeptime-route"] == "full"
    assert "sleeptime_router_fallbacks_total 1.0" in client.get("/metrics").text


def test_cached_route_answers_without_the_upstream(
    make_client: Callable[..., TestClient], fake: FakeUpstream
) -> None:
    router = Scripted(RouteDecision("cached", rung="answer", answer="42"))
    client = known(make_client(router=router))
    plain = post(client)
    assert plain.json()["choices"][0]["message"]["content"] == "42"
    assert (
        plain.headers["x-sleeptime-route"] == "cached"
        and plain.headers["x-sleeptime-rung"] == "answer"
    )
    streamed = post(client, stream=True).text
    assert '"content": "42"' in streamed and streamed.endswith("data: [DONE]\n\n")
    assert fake.requests == []


def test_tokens_saved_against_the_tenants_full_route(
    make_client: Callable[..., TestClient], fake: FakeUpstream
) -> None:
    router = Scripted(RouteDecision("full"))
    client = known(make_client(router=router), KEY_A, KEY_B)
    fake.enqueue(completion("a", usage=usage_body(10, 200)))
    assert "x-sleeptime-tokens-saved" not in post(client).headers  # full: nothing saved
    router.decision = RouteDecision("cached", answer="42")
    assert post(client).headers["x-sleeptime-tokens-saved"] == "200"
    assert "x-sleeptime-tokens-saved" not in post(client, key=KEY_B).headers  # B: no yardstick


def test_the_full_route_adds_the_rungs_instruction_and_keeps_the_clients_budget(
    make_client: Callable[..., TestClient], fake: FakeUpstream
) -> None:
    """The rung's instruction closes the query; max_tokens stay the client's (none stays
    none): only a cheap attempt on c' is capped (test_proxy_passthrough_rules)."""
    client = known(make_client(router=Scripted(RouteDecision("full", rung="brief"))))
    fake.enqueue(completion("a"), completion("b"), completion("c"))
    post(client)
    for budget in (9, 900):
        client.post(
            "/v1/chat/completions",
            json={"model": "m", "messages": MESSAGES, "max_tokens": budget},
            headers={"Authorization": f"Bearer {KEY_A}", "X-Sleeptime-Routing": "policy"},
        )
    sent = [r.json for r in fake.requests]
    assert [s.get("max_tokens") for s in sent] == [None, 9, 900]
    last = sent[0]["messages"][-1]
    assert last["role"] == "user" and last["content"].startswith("Q?")
    assert last["content"].endswith(rung("brief").instruction)
    assert sent[0]["messages"][0] == MESSAGES[0]


def test_enriched_router_only_with_a_learned_context() -> None:
    router = EnrichedRouter()
    learned = ContextRecord("t", "c", 1, "x", "explicit", 1, "done", "notes", [], 5, None, 0.0)
    unlearned = ContextRecord("t", "c", 1, "x", "explicit", 1, "queued", None, None, 0, None, 0.0)
    assert router.decide("t", learned, "q").route == "enriched"
    assert router.decide("t", unlearned, "q").route == "full"
    assert router.decide("t", None, "q").route == "full"


def test_enrich_puts_notes_between_context_and_query() -> None:
    messages = [
        *MESSAGES[:1],
        {"role": "assistant", "content": "ok"},
        *MESSAGES[1:],
        {"role": "assistant", "content": "prefill"},
    ]
    out = enrich(messages, "- 9 eggs")
    assert out[:2] == messages[:2] and out[3:] == messages[2:]
    assert out[2] == {"role": "system", "content": f"- 9 eggs\n\n{NOTES_HINT}"}


def test_feedback_labels_the_tenants_own_request(client: TestClient, fake: FakeUpstream) -> None:
    fake.enqueue(completion("a"))
    request_id = post(client).headers["x-request-id"]
    ok = client.post(
        "/v1/feedback",
        json={"request_id": request_id, "correct": True},
        headers={"Authorization": f"Bearer {KEY_A}"},
    )
    assert ok.status_code == 200 and ok.json() == {"request_id": request_id, "correct": True}
    state = client.app.state.proxy  # type: ignore[attr-defined]
    assert state.store.get_feedback(state.tenants.identify(f"Bearer {KEY_A}"), request_id) is True
    other = client.post(
        "/v1/feedback",
        json={"request_id": request_id, "correct": False},
        headers={"Authorization": f"Bearer {KEY_B}"},
    )
    assert other.status_code == 404 and other.json()["error"]["code"] == "request_not_found"


def test_feedback_rejects_bad_bodies(client: TestClient) -> None:
    for body in (
        {},
        {"request_id": "r"},
        {"request_id": "r", "correct": "yes"},
        {"request_id": 3, "correct": True},
    ):
        response = client.post("/v1/feedback", json=body)
        assert response.status_code == 400 and "error" in response.json()


def test_records_carry_route_tokens_and_cost(client: TestClient, fake: FakeUpstream) -> None:
    from fake_upstream import usage_body

    fake.enqueue(completion("a", usage=usage_body(20, 4, cached=16)))
    request_id = post(client).headers["x-request-id"]
    state = client.app.state.proxy  # type: ignore[attr-defined]
    state.records.writer.flush()
    record = state.store.get_record(state.tenants.identify(f"Bearer {KEY_A}"), request_id)
    assert (record.route, record.status, record.model) == ("full", 200, "m")
    assert (record.prompt_tokens, record.completion_tokens, record.cached_tokens) == (20, 4, 16)
    assert record.cost == 40.0 and record.latency_ms > 0 and record.context_id


def test_a_failing_store_read_falls_back(tmp_path: Path, fake: FakeUpstream) -> None:
    class BrokenReads(SqliteStore):
        def get_context(self, tenant: str, context_id: str) -> ContextRecord | None:
            raise sqlite3.OperationalError("disk I/O error")

    store = BrokenReads(tmp_path / "broken.sqlite")
    forwarder = Forwarder(fake.url, retry=QUICK)
    app = create_app(config_for(tmp_path, sleep_enabled=False), forwarder=forwarder, store=store)
    with TestClient(app, headers={"Authorization": f"Bearer {KEY_A}"}) as client:
        fake.enqueue(completion("a"))
        response = post(client)
        assert response.status_code == 200 and response.headers["x-sleeptime-route"] == "full"
        assert "sleeptime_router_fallbacks_total 1.0" in client.get("/metrics").text
        client.portal.call(forwarder.aclose)
    store.close()
