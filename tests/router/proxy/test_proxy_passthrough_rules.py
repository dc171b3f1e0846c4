"""What the proxy routes and what it passes through, over real HTTP, with a recording upstream.

The router here routes everything it is asked about, as the committed GSM8K policy did
when "Say hi." came back "Answer: 1": so each request that reaches the upstream as the
client sent it proves the proxy never asked it. Contexts are learned in the real SQLite
store before the proxy starts; the client is the real openai SDK where one is involved.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest
from fake_upstream import FakeUpstream, completion, completion_body, json_reply, stream_reply
from fake_upstream import usage_body as usage
from proxy_fakes import KEY_A

from router.ladder import rung
from router.local_server import free_port
from router.model_list import parse_models
from router.proxy.app import create_app
from router.proxy.config import ProxyConfig
from router.proxy.routing import RouteDecision
from router.proxy.server import ServerThread
from router.proxy.tenants import Tenants
from router.settings import Settings
from router.store import SqliteStore
from router.store.base import ContextRecord, LearnedRecord

DOC = "Janet's ducks lay 16 eggs per day. She eats 3 for breakfast and bakes with 4."
ESSAY = "Write about the history of the printing press."
LEARNED = "- Eggs left each day: 16 - 3 - 4 = 9"
AUTH = {"Authorization": f"Bearer {KEY_A}"}
ROUTED = {**AUTH, "X-Sleeptime-Routing": "policy"}
TOOLS = [{"type": "function", "function": {"name": "add", "parameters": {"type": "object"}}}]


class Eager:
    """Routes whatever it is asked about: the cheap rung on c' once learned, else full."""

    formats = frozenset({"number"})

    def __init__(self) -> None:
        self.decision = RouteDecision("enriched", rung="answer")
        self.asked = 0

    def decide(self, tenant: str, context: ContextRecord | None, query: str) -> RouteDecision:
        self.asked += 1
        learned = context is not None and context.has_learned
        return self.decision if learned else RouteDecision("full", rung="answer")


def learn(config: ProxyConfig, context_id: str, text: str, answer_format: str | None) -> None:
    """What the worker would store for KEY_A, before the proxy starts."""
    tenant = Tenants.from_file(config.salt_file).identify(AUTH["Authorization"])
    store = SqliteStore(config.database)
    record = store.register_context(tenant, context_id, text, 6.0, answer_format=answer_format)
    store.queue_sleep(tenant, context_id, record.version)
    job = store.claim_job()
    assert job is not None and job.context_id == context_id
    store.finish_job(job, LearnedRecord(LEARNED, [], 100))
    store.close()


@pytest.fixture
def serve(tmp_path: Path, fake: FakeUpstream) -> Iterator[Callable[..., ServerThread]]:
    """serve(router, models=[...]) -> a running proxy whose contexts "doc" (numeric, stored
    before formats: None) and "essay" (text) are learned."""
    started: list[ServerThread] = []

    def start(router: Any = None, models: list[dict[str, Any]] | None = None) -> ServerThread:
        flat: dict[str, Any] = {"upstream_url": fake.url, "upstream_model": "m"}
        if models:
            flat = {"model_list": parse_models(models, {})}
        settings = Settings(cache_dir=tmp_path, upstream_max_retries=0, **flat)
        config = ProxyConfig.from_settings(settings, sleep_enabled=False)
        learn(config, "doc", DOC, None)
        learn(config, "essay", ESSAY, "text")
        server = ServerThread(create_app(config, router=router), free_port()).__enter__()
        started.append(server)
        return server

    yield start
    for server in started:
        server.__exit__(None, None, None)


def chat(context: str, query: str, **extra: Any) -> dict[str, Any]:
    return {
        "model": "m",
        "messages": [{"role": "system", "content": context}, {"role": "user", "content": query}],
        **extra,
    }


def post(server: ServerThread, raw: bytes, headers: dict[str, str]) -> httpx.Response:
    sent = {**headers, "Content-Type": "application/json"}
    return httpx.post(f"{server.url}/chat/completions", content=raw, headers=sent, timeout=10)


def client_for(server: ServerThread, **headers: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=server.url, api_key=KEY_A, max_retries=0, default_headers=headers)


def metrics(server: ServerThread) -> str:
    return httpx.get(f"{server.url.removesuffix('/v1')}/metrics", headers=AUTH).text


def test_say_hi_without_a_context_passes_byte_for_byte(
    serve: Callable[..., ServerThread], fake: FakeUpstream
) -> None:
    router = Eager()
    server = serve(router)
    raw = json.dumps({"model": "m", "messages": [{"role": "user", "content": "Say hi."}]})
    fake.enqueue(completion("Hi!"))
    response = post(server, raw.encode(), ROUTED)
    assert response.json()["choices"][0]["message"]["content"] == "Hi!"
    assert fake.requests[-1].body == raw.encode() and router.asked == 0
    assert response.headers["x-sleeptime-routing"] == "policy"
    assert response.headers["x-sleeptime-route"] == "full"
    assert response.headers["x-sleeptime-reason"] == "no_context"
    fake.enqueue(completion("Hello!"))  # the alias "sleeptime" opts in: the same holds
    said = client_for(server).chat.completions.with_raw_response.create(
        model="sleeptime", messages=[{"role": "user", "content": "Say hi."}]
    )
    assert said.parse().choices[0].message.content == "Hello!" and router.asked == 0
    assert fake.requests[-1].json == {**json.loads(raw), "model": "m"}
    assert said.headers["x-sleeptime-reason"] == "no_context"
    assert 'sleeptime_passed_through_total{reason="no_context"} 2.0' in metrics(server)


@pytest.mark.parametrize(
    ("extra", "why"),
    [
        ({"tools": TOOLS}, "tools"),
        ({"tool_choice": "none"}, "tool_choice"),
        ({"response_format": {"type": "json_object"}}, "response_format"),
        ({"n": 2}, "n"),
        ({"logprobs": True}, "logprobs"),
        ({"logprobs": True, "top_logprobs": 3}, "logprobs"),
        ({"top_logprobs": 3}, "top_logprobs"),
    ],
)
def test_parameters_the_router_would_bend_pass_byte_for_byte(
    serve: Callable[..., ServerThread], fake: FakeUpstream, extra: dict[str, Any], why: str
) -> None:
    router = Eager()
    server = serve(router)
    headers = {**ROUTED, "X-Sleeptime-Context": "doc"}
    fake.enqueue(completion("9"))
    routed = post(server, json.dumps(chat(DOC, "Eggs left?")).encode(), headers)
    assert routed.headers["x-sleeptime-route"] == "enriched" and router.asked == 1  # would route
    assert LEARNED in json.dumps(fake.requests[-1].json)
    raw = json.dumps(chat(DOC, "Eggs left?", **extra)).encode()
    fake.enqueue(completion("9"))
    response = post(server, raw, headers)
    assert response.status_code == 200 and fake.requests[-1].body == raw and router.asked == 1
    assert response.headers["x-sleeptime-route"] == "full"
    assert response.headers["x-sleeptime-reason"] == why
    assert f'sleeptime_passed_through_total{{reason="{why}"}} 1.0' in metrics(server)


def test_a_request_with_tools_gets_its_tool_call(
    serve: Callable[..., ServerThread], fake: FakeUpstream
) -> None:
    server = serve(Eager())
    called = completion_body("", finish_reason="tool_calls")
    call = {"id": "call_1", "type": "function", "function": {"name": "add", "arguments": "{}"}}
    called["choices"][0]["message"] = {"role": "assistant", "content": None, "tool_calls": [call]}
    fake.enqueue(json_reply(called))
    body = chat(DOC, "Add 3 and 4.", tools=TOOLS, max_tokens=1500)
    answer = client_for(server, **{"X-Sleeptime-Context": "doc"}).chat.completions.create(
        **{**body, "model": "sleeptime"}
    )
    assert answer.choices[0].message.tool_calls[0].function.name == "add"
    assert fake.requests[-1].json == body  # the client's request, its model resolved


def test_max_tokens_is_never_lowered_on_the_full_route(
    serve: Callable[..., ServerThread], fake: FakeUpstream
) -> None:
    router = Eager()
    server = serve(router)
    router.decision = RouteDecision("full", rung="steps")
    fake.enqueue(completion("An essay.", usage=usage(50, 900)))
    client = client_for(server, **{"X-Sleeptime-Context": "doc"})
    raw = client.chat.completions.with_raw_response.create(
        **{**chat(DOC, "Tell me about the eggs."), "model": "sleeptime"}, max_tokens=1500
    )
    assert raw.headers["x-sleeptime-route"] == "full" and router.asked == 1
    assert fake.requests[-1].json["max_tokens"] == 1500
    assert raw.parse().choices[0].finish_reason == "stop"


@pytest.mark.parametrize("stream", [False, True], ids=["plain", "streamed"])
def test_a_cheap_answer_cut_at_its_budget_is_escalated(
    serve: Callable[..., ServerThread], fake: FakeUpstream, stream: bool
) -> None:
    """The cheap attempt on c' is capped at its rung and asked whole; cut there, it is
    discarded and the client's own request answers, its tokens charged with the attempt's."""
    server = serve(Eager())
    fake.enqueue(completion("16 - 3 - 4", finish_reason="length", usage=usage(120, 16)))
    if stream:
        fake.enqueue(stream_reply(["A whole ", "answer: 9"], usage=usage(40, 700)))
    else:
        fake.enqueue(completion("A whole answer: 9", usage=usage(40, 700)))
    client = client_for(server, **{"X-Sleeptime-Context": "doc"})
    body = {**chat(DOC, "Eggs left?"), "model": "sleeptime", "max_tokens": 1500}
    if stream:
        with client.chat.completions.with_streaming_response.create(
            **body, stream=True, stream_options={"include_usage": True}
        ) as response:
            headers = response.headers
            chunks = list(response.parse())
        text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
        finish = next(
            c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason
        )
        spent = chunks[-1].usage
    else:
        raw = client.chat.completions.with_raw_response.create(**body)
        headers, answer = raw.headers, raw.parse()
        text, finish, spent = (
            answer.choices[0].message.content,
            answer.choices[0].finish_reason,
            answer.usage,
        )
    assert (text, finish) == ("A whole answer: 9", "stop")
    assert spent.completion_tokens == 716 and spent.prompt_tokens == 160
    assert headers["x-sleeptime-route"] == "full" and headers["x-sleeptime-escalated"] == "length"
    attempt, full = (r.json for r in fake.requests[-2:])
    assert attempt["max_tokens"] == rung("answer").max_tokens and not attempt.get("stream")
    assert full["max_tokens"] == 1500 and bool(full.get("stream")) is stream
    assert full["messages"] == body["messages"]  # the client's own request
    assert "sleeptime_escalations_total 1.0" in metrics(server)


@pytest.mark.parametrize("stream", [False, True], ids=["plain", "streamed"])
def test_a_cheap_answer_that_finished_is_served(
    serve: Callable[..., ServerThread], fake: FakeUpstream, stream: bool
) -> None:
    server = serve(Eager())
    fake.enqueue(completion("9", usage=usage(120, 2)))
    body = chat(DOC, "Eggs left?", max_tokens=1500, stream=stream)
    response = post(server, json.dumps(body).encode(), {**ROUTED, "X-Sleeptime-Context": "doc"})
    assert response.headers["x-sleeptime-route"] == "enriched"
    assert "x-sleeptime-escalated" not in response.headers and len(fake.requests) == 1
    assert fake.requests[-1].json["max_tokens"] == rung("answer").max_tokens
    assert (
        ('"content": "9"' in response.text)
        if stream
        else response.json()["usage"]["completion_tokens"] == 2
    )


def test_a_checked_answer_cut_at_its_budget_is_never_served(
    serve: Callable[..., ServerThread], fake: FakeUpstream
) -> None:
    """Even where the number it got to agrees with the anticipated answer."""
    router = Eager()
    router.decision = RouteDecision(
        "enriched", rung="answer", check_answer="9", fallback_rung="steps"
    )
    server = serve(router)
    fake.enqueue(completion("Answer: 9", finish_reason="length"), completion("Answer: 9"))
    body = chat(DOC, "Eggs left?", max_tokens=1500)
    response = post(server, json.dumps(body).encode(), {**ROUTED, "X-Sleeptime-Context": "doc"})
    assert response.headers["x-sleeptime-check"] == "cut"
    assert response.headers["x-sleeptime-escalated"] == "length"
    full = fake.requests[-1].json
    assert full["max_tokens"] == 1500 and full["messages"][-1]["content"].endswith(
        rung("steps").instruction
    )


def test_routing_is_opt_in_by_header_or_alias(
    serve: Callable[..., ServerThread], fake: FakeUpstream
) -> None:
    router = Eager()
    server = serve(router)
    raw = json.dumps(chat(DOC, "Eggs left?")).encode()
    named = {**AUTH, "X-Sleeptime-Context": "doc"}
    asked = [
        (named, raw, "off"),  # an upstream's own model name: the client's model, unrouted
        ({**named, "X-Sleeptime-Routing": "policy"}, raw, "policy"),
        ({**named, "X-Sleeptime-Routing": "OFF"}, raw.replace(b'"m"', b'"sleeptime"'), "off"),
        (named, raw.replace(b'"m"', b'"sleeptime"'), "policy"),  # the alias opts in
    ]
    for headers, body, routing in asked:
        fake.enqueue(completion("9"))
        response = post(server, body, headers)
        assert response.headers["x-sleeptime-routing"] == routing
        routed = response.headers["x-sleeptime-route"] == "enriched"
        assert routed is (routing == "policy")
        assert (fake.requests[-1].body == raw) is (routing == "off")
    assert router.asked == 2
    bad = post(server, raw, {**named, "X-Sleeptime-Routing": "always"})
    assert bad.status_code == 400 and "X-Sleeptime-Routing" in bad.json()["error"]["message"]


def test_a_model_entry_opts_its_names_in(
    serve: Callable[..., ServerThread], fake: FakeUpstream
) -> None:
    server = serve(
        Eager(),
        models=[
            {"name": "plain", "upstream_model": "m", "upstream_url": fake.url},
            {"name": "routed", "aliases": ["r"], "upstream_model": "m",
             "upstream_url": fake.url, "route": "policy"},
        ],
    )  # fmt: skip
    named = {**AUTH, "X-Sleeptime-Context": "doc"}
    for model, routing in (
        ("plain", "off"),
        ("routed", "policy"),
        ("r", "policy"),
        ("sleeptime", "policy"),
    ):
        fake.enqueue(completion("9"))
        body = json.dumps({**chat(DOC, "Eggs left?"), "model": model}).encode()
        assert post(server, body, named).headers["x-sleeptime-routing"] == routing


def test_nothing_is_routed_by_the_pass_through_router(
    serve: Callable[..., ServerThread], fake: FakeUpstream
) -> None:
    server = serve()
    raw = json.dumps(chat(DOC, "Eggs left?")).encode()
    fake.enqueue(completion("9"))
    response = post(server, raw, {**ROUTED, "X-Sleeptime-Context": "doc"})
    assert response.headers["x-sleeptime-routing"] == "off" and fake.requests[-1].body == raw


def test_a_format_the_policy_was_not_trained_for_passes_through(
    serve: Callable[..., ServerThread], fake: FakeUpstream
) -> None:
    router = Eager()
    server = serve(router)
    raw = json.dumps(chat(ESSAY, "Write it.", max_tokens=1500)).encode()
    fake.enqueue(completion("An essay."))
    response = post(server, raw, {**ROUTED, "X-Sleeptime-Context": "essay"})
    assert response.headers["x-sleeptime-reason"] == "answer_format"
    assert fake.requests[-1].body == raw and router.asked == 0
