"""A context's answer format over real HTTP: what the rewrite asks for, and what is never
assumed about a context nobody declared (issue 17)."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from fake_upstream import FakeUpstream, completion
from proxy_fakes import KEY_A

from router.answer_formats import FORMATS
from router.ladder import rung
from router.local_server import free_port
from router.proxy.app import create_app
from router.proxy.config import ProxyConfig
from router.proxy.routing import RouteDecision
from router.proxy.server import ServerThread
from router.proxy.tenants import Tenants
from router.settings import Settings
from router.store import SqliteStore
from router.store.base import ContextRecord, LearnedRecord

REPORT = "| | 2019 | 2018 |\n| --- | --- | --- |\n| Other | 44.1 | 56.7 |\n\n(in millions)"
PROMPT = "You are a helpful assistant for Acme's support desk."
LEARNED = (
    "Computed from the table:\n- change in Other from 2018 to 2019: -12.6 million\n"
    + "\n".join(f"- average Row{i} for 2018 and 2019: {i} million" for i in range(12))
)
AUTH = {"Authorization": f"Bearer {KEY_A}", "X-Sleeptime-Routing": "policy"}


class Cheap:
    """The cheap rung on c' once learned, else the full rung: asks about everything."""

    def __init__(self) -> None:
        self.asked = 0

    def decide(self, tenant: str, context: ContextRecord | None, query: str) -> RouteDecision:
        self.asked += 1
        if context is not None and context.has_learned:
            return RouteDecision("enriched", rung="answer", fallback_rung="steps")
        return RouteDecision("full", rung="steps")


@pytest.fixture
def proxy(tmp_path: Path, fake: FakeUpstream) -> Iterator[tuple[ServerThread, Cheap]]:
    settings = Settings(cache_dir=tmp_path, upstream_url=fake.url, upstream_model="m")
    config = ProxyConfig.from_settings(settings, sleep_enabled=False)
    tenant = Tenants.from_file(config.salt_file).identify(AUTH["Authorization"])
    store = SqliteStore(config.database)
    record = store.register_context(tenant, "report", REPORT, 6.0, answer_format="span")
    store.queue_sleep(tenant, "report", record.version)
    job = store.claim_job()
    assert job is not None
    store.finish_job(job, LearnedRecord(LEARNED, [], 50))
    store.close()
    router = Cheap()
    with ServerThread(create_app(config, router=router), free_port()) as server:
        yield server, router


def post(server: ServerThread, body: dict, **headers: str) -> httpx.Response:
    sent = {**AUTH, **headers}
    return httpx.post(f"{server.url}/chat/completions", json=body, headers=sent, timeout=10)


def test_a_span_context_is_asked_for_a_span_answer_with_its_tokens(
    proxy: tuple[ServerThread, Cheap], fake: FakeUpstream
) -> None:
    server, _ = proxy
    body = {"model": "m", "messages": [{"role": "user", "content": "Change in Other?"}]}
    fake.enqueue(completion("Answer: -12.6 million"))
    response = post(server, body, **{"X-Sleeptime-Context": "report"})
    assert response.headers["x-sleeptime-route"] == "enriched"
    sent = fake.requests[-1].json
    assert sent["max_tokens"] == rung("answer").max_tokens + FORMATS["span"].extra_tokens
    closing = sent["messages"][-1]["content"]
    assert FORMATS["span"].bare in closing and FORMATS["number"].bare not in closing


def test_a_span_query_reads_the_learned_lines_that_match_it_not_all_of_them(
    proxy: tuple[ServerThread, Cheap], fake: FakeUpstream
) -> None:
    server, _ = proxy
    question = "What was the change in Other from 2018 to 2019?"
    body = {"model": "m", "messages": [{"role": "user", "content": question}]}
    fake.enqueue(completion("Answer: -12.6 million"))
    response = post(server, body, **{"X-Sleeptime-Context": "report"})
    assert response.headers["x-sleeptime-route"] == "enriched"
    notes = fake.requests[-1].json["messages"][-2]["content"]
    assert "- change in Other from 2018 to 2019: -12.6 million" in notes
    assert notes.count("\n- ") == FORMATS["span"].note_lines
    assert "Row0" not in notes.split("\n- ")[1]


def test_a_context_nobody_declared_is_never_assumed_to_be_numeric(
    proxy: tuple[ServerThread, Cheap], fake: FakeUpstream
) -> None:
    """A chatbot's system prompt seen again and again becomes a context the proxy knows,
    but only its registration says what its answers are."""
    server, router = proxy
    body = {"model": "m", "messages": [
        {"role": "system", "content": PROMPT}, {"role": "user", "content": "Say hi."}]}  # fmt: skip
    raw = json.dumps(body).encode()
    reasons = []
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and "answer_format" not in reasons:
        fake.enqueue(completion("Hi!"))
        sent = {**AUTH, "Content-Type": "application/json"}
        response = httpx.post(f"{server.url}/chat/completions", content=raw, headers=sent)
        reasons.append(response.headers["x-sleeptime-reason"])
        assert fake.requests[-1].body == raw  # byte for byte, whatever the reason
        time.sleep(0.05)  # the sighting reaches the store through the writer
    assert reasons[0] == "no_context" and reasons[-1] == "answer_format"
    assert router.asked == 0
    context_id = response.headers["x-sleeptime-context"]
    declared = {"id": context_id, "context": PROMPT, "answer_format": "text"}
    registered = httpx.post(f"{server.url}/contexts", json=declared, headers=AUTH)
    assert registered.json()["answer_format"] == "text"
    bad = httpx.post(f"{server.url}/contexts", json={**declared, "answer_format": "essay"},
                     headers=AUTH)  # fmt: skip
    assert bad.status_code == 400 and "answer_format" in bad.text
