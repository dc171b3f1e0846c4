"""One deadline per request, over real HTTP through the real proxy.

A hung upstream used to get one completion 4 times, each try given the whole timeout,
and its client waited about 4x the timeout. Now the timeout is the request's deadline,
shortened by the client's own timeout when it sends one, and every upstream call of
the request shares it.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import httpx
import openai
import pytest
from fake_upstream import FakeUpstream, completion, completion_body, error_reply, json_reply
from fastapi.testclient import TestClient
from slow_upstreams import AUTH, KEY, HangingUpstream, records, start_proxy

from router.ladder import rung
from router.proxy.client_wait import TIMEOUT_HEADERS
from router.proxy.routing import RouteDecision
from router.proxy.server import ServerThread
from router.store.base import ContextRecord

MARGIN_S = 0.8  # a loaded machine's scheduling
BODY = {"model": "m", "messages": [{"role": "user", "content": "hi"}]}


def post(server: ServerThread, **headers: str) -> tuple[httpx.Response, float]:
    """A client with no timeout header of its own unless given one, and a long patience."""
    started = time.monotonic()
    response = httpx.post(
        f"{server.url}/chat/completions", json=BODY, headers={**AUTH, **headers}, timeout=30
    )
    return response, time.monotonic() - started


def test_a_hung_upstream_is_asked_once_and_answered_504_at_the_timeout(tmp_path: Path) -> None:
    with (
        HangingUpstream() as upstream,
        start_proxy(
            tmp_path, upstream.url, upstream_timeout_s=1.0, upstream_max_retries=3
        ) as server,
    ):
        response, waited = post(server)
        assert response.status_code == 504
        error = response.json()["error"]
        assert error["code"] == "upstream_timeout"
        assert error["message"] == "the upstream did not answer within 1 s"
        assert 1.0 <= waited < 1.0 + MARGIN_S  # before: about 4 s, 4 upstream requests
        assert upstream.requests == 1
        assert records(server, tmp_path) == [(504, "upstream_timeout")]


@pytest.mark.parametrize("header", ["X-Sleeptime-Timeout", "X-Stainless-Read-Timeout"])
def test_the_clients_timeout_shortens_the_deadline(tmp_path: Path, header: str) -> None:
    with (
        HangingUpstream() as upstream,
        start_proxy(tmp_path, upstream.url, upstream_timeout_s=30.0) as server,
    ):
        response, waited = post(server, **{header: "0.5"})
        assert response.status_code == 504 and 0.5 <= waited < 0.5 + MARGIN_S
        assert response.json()["error"]["message"] == "the upstream did not answer within 0.5 s"
        assert upstream.requests == 1


def test_a_longer_client_timeout_does_not_extend_it(tmp_path: Path) -> None:
    with (
        HangingUpstream() as upstream,
        start_proxy(tmp_path, upstream.url, upstream_timeout_s=0.5) as server,
    ):
        response, waited = post(server, **{"X-Sleeptime-Timeout": "600"})
        assert response.status_code == 504 and waited < 0.5 + MARGIN_S


def test_the_header_the_openai_sdk_sends_is_the_one_read(fake: FakeUpstream) -> None:
    """The installed SDK names its timeout X-Stainless-Read-Timeout (not -Timeout)."""
    fake.enqueue(completion("ok"))
    client = openai.OpenAI(base_url=fake.url, api_key=KEY, max_retries=0, timeout=7.5)
    client.chat.completions.create(model="m", messages=BODY["messages"])  # type: ignore[arg-type]
    sent = {name.lower(): value for name, value in fake.requests[0].headers.items()}
    read = [name for name in TIMEOUT_HEADERS if name in sent]
    assert read == ["x-stainless-read-timeout"] and sent[read[0]] == "7.5"


def test_retries_fit_in_the_deadline_or_are_not_made(tmp_path: Path, fake: FakeUpstream) -> None:
    """The default backoff (0.25-0.5 s, then 0.5-1 s) leaves no room in 0.3 s: a 503 is
    answered at once, not after sleeping past the client's deadline."""
    fake.fallback = error_reply(503, "busy")
    with start_proxy(tmp_path, fake.url, upstream_timeout_s=0.3) as server:
        response, waited = post(server)
    assert response.status_code == 502 and "busy" in response.json()["error"]["message"]
    assert len(fake.requests) == 1 and waited < 0.3


# a checked answer: its voters and the full call after them share one deadline

DOC = "Janet's ducks lay 16 eggs per day. She eats 3 for breakfast and bakes with 4."
CHECKED = RouteDecision("enriched", rung="answer", check_rung="brief", fallback_rung="steps")


class CheckedRouter:
    """Checks every query on a learned context (as the trained policy may)."""

    def decide(self, tenant: str, context: ContextRecord | None, query: str) -> RouteDecision:
        learned = context is not None and context.has_learned
        return CHECKED if learned else RouteDecision("full")


def test_a_checked_answer_and_its_full_call_share_the_deadline(
    make_client: Callable[..., TestClient], fake: FakeUpstream
) -> None:
    """Voters that hang spend the deadline: the full call after them is not sent at all.
    Before, each call had the whole timeout and its retries: about 6 s here, 5 requests."""
    client = make_client(router=CheckedRouter(), sleep_enabled=True, timeout_s=1.0)
    headers = {"X-Sleeptime-Context": "doc"}
    client.post("/v1/contexts", json={"id": "doc", "context": DOC}, headers=headers)
    patience = time.monotonic() + 10
    while client.get("/v1/contexts/doc", headers=headers).json().get("status") != "done":
        assert time.monotonic() < patience, "the context was never learned"
        time.sleep(0.02)
    fake.fallback = json_reply(completion_body("9"), delay_s=3.0)
    messages = [{"role": "system", "content": DOC}, {"role": "user", "content": "Eggs left?"}]
    started = time.monotonic()
    response = client.post(
        "/v1/chat/completions",
        json={"model": "m", "messages": messages},
        headers={**headers, "X-Sleeptime-Routing": "policy"},
    )
    waited = time.monotonic() - started
    assert response.status_code == 504 and 1.0 <= waited < 1.0 + MARGIN_S
    sent = [r.json["max_tokens"] for r in fake.requests if r.method == "POST"]
    assert sorted(sent) == [rung("answer").max_tokens, rung("brief").max_tokens]  # no full call
