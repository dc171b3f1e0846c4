"""Several models over real HTTP: aliases, one upstream each, fallbacks, /v1/models.

Two fake upstreams stand for two providers; the proxy is configured by a [[model]]
list and driven by the real openai client. What each upstream was sent, the response's
`X-Sleeptime-Model` header and the stored record say which model answered.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import openai
import pytest
from fake_upstream import (
    FakeUpstream,
    completion,
    error_reply,
    healthy,
    json_reply,
    stream_reply,
    usage_body,
)
from fastapi.testclient import TestClient
from model_list_proxy import TIMEOUT_S, client_for, record_of, serving

from router.errors import ConfigError
from router.model_list import parse_models
from router.proxy.app import create_app
from router.proxy.config import ProxyConfig
from router.proxy.model_routes import build_model_list
from router.settings import Settings

MESSAGES = [{"role": "user", "content": "hi"}]


@pytest.fixture
def backup() -> Iterator[FakeUpstream]:
    with FakeUpstream() as server:
        yield server


def two_models(primary_url: str, backup_url: str) -> list[dict[str, Any]]:
    return [
        {
            "name": "fast",
            "aliases": ["sleeptime", "quick"],
            "upstream_url": primary_url,
            "upstream_model": "fast-v1",
            "fallbacks": ["backup"],
        },
        {"name": "backup", "upstream_url": backup_url, "upstream_model": "backup-v2"},
    ]


def chat(client: openai.OpenAI, model: str) -> Any:
    return client.chat.completions.with_raw_response.create(model=model, messages=MESSAGES)


def closed_port_url() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{sock.getsockname()[1]}/v1"  # nothing listens: refused


def test_names_and_aliases_reach_their_upstream_by_its_name(
    tmp_path: Path, fake: FakeUpstream, backup: FakeUpstream
) -> None:
    fake.fallback = backup.fallback = healthy
    with serving(tmp_path, two_models(fake.url, backup.url)) as server:
        client = client_for(server)
        answers = [chat(client, model) for model in ("quick", "sleeptime", "fast", "backup")]
        default = client.chat.completions.with_raw_response.create(
            model="", messages=MESSAGES
        )  # no model: the default
        with pytest.raises(openai.NotFoundError) as missing:
            chat(client, "gpt-4o")
    assert [r.json["model"] for r in fake.requests] == ["fast-v1"] * 4
    assert [r.json["model"] for r in backup.requests] == ["backup-v2"]
    names = [a.headers["x-sleeptime-model"] for a in [*answers, default]]
    assert names == ["fast", "fast", "fast", "backup", "fast"]
    assert record_of(tmp_path, answers[0].headers["x-request-id"])["model"] == "fast"
    assert isinstance(missing.value.body, dict)
    assert missing.value.body["code"] == "model_not_found"
    assert len(fake.requests) + len(backup.requests) == 5  # the unknown model called no one


@pytest.mark.parametrize(
    "failure",
    [
        error_reply(500, "kaput"),
        error_reply(503, "overloaded"),
        json_reply({"late": True}, delay_s=TIMEOUT_S * 4),  # past its share of the deadline
    ],
    ids=["500", "503", "timeout"],
)
def test_a_failed_upstream_falls_back_and_the_record_names_the_backup(
    tmp_path: Path, fake: FakeUpstream, backup: FakeUpstream, failure: Any
) -> None:
    fake.enqueue(failure)
    backup.enqueue(completion("from the backup"))
    with serving(tmp_path, two_models(fake.url, backup.url)) as server:
        answer = chat(client_for(server), "quick")
    assert answer.parse().choices[0].message.content == "from the backup"
    assert len(fake.requests) == 1  # max_retries 0: one try, then the next model
    assert backup.requests[0].json["model"] == "backup-v2"
    assert backup.requests[0].json["messages"] == MESSAGES
    assert answer.headers["x-sleeptime-model"] == "backup"
    record = record_of(tmp_path, answer.headers["x-request-id"])
    assert (record["model"], record["status"]) == ("backup", 200)


def test_a_refused_connection_falls_back(tmp_path: Path, backup: FakeUpstream) -> None:
    backup.enqueue(completion("still served"))
    with serving(tmp_path, two_models(closed_port_url(), backup.url)) as server:
        answer = chat(client_for(server), "fast")
    assert answer.parse().choices[0].message.content == "still served"
    assert answer.headers["x-sleeptime-model"] == "backup"


def test_a_stream_that_cannot_open_falls_back(
    tmp_path: Path, fake: FakeUpstream, backup: FakeUpstream
) -> None:
    fake.enqueue(error_reply(502, "bad gateway"))
    backup.enqueue(stream_reply(["from ", "backup"], usage=usage_body(3, 2)))
    with serving(tmp_path, two_models(fake.url, backup.url)) as server:
        raw = client_for(server).chat.completions.with_raw_response.create(
            model="quick", messages=MESSAGES, stream=True
        )
        text = "".join(c.choices[0].delta.content or "" for c in raw.parse() if c.choices)
    assert text == "from backup"
    assert backup.requests[0].json["model"] == "backup-v2"
    assert raw.headers["x-sleeptime-model"] == "backup"
    record = record_of(tmp_path, raw.headers["x-request-id"])
    assert (record["model"], record["completion_tokens"]) == ("backup", 2)


def test_a_refused_request_does_not_fall_back(
    tmp_path: Path, fake: FakeUpstream, backup: FakeUpstream
) -> None:
    fake.enqueue(error_reply(400, "bad temperature"))
    with (
        serving(tmp_path, two_models(fake.url, backup.url)) as server,
        pytest.raises(openai.BadRequestError) as refused,
    ):
        chat(client_for(server), "quick")
    assert "bad temperature" in str(refused.value)
    assert backup.requests == []  # the backup would refuse it too


def test_when_every_model_fails_the_last_error_is_answered(
    tmp_path: Path, fake: FakeUpstream, backup: FakeUpstream
) -> None:
    fake.enqueue(error_reply(500, "first down"))
    backup.enqueue(error_reply(500, "second down"))
    with (
        serving(tmp_path, two_models(fake.url, backup.url)) as server,
        pytest.raises(openai.APIStatusError) as failed,
    ):
        chat(client_for(server), "quick")
    assert failed.value.status_code == 502
    assert "second down" in str(failed.value)
    assert (len(fake.requests), len(backup.requests)) == (1, 1)


def test_models_lists_the_configured_names(
    tmp_path: Path, fake: FakeUpstream, backup: FakeUpstream
) -> None:
    models = two_models(fake.url, backup.url)
    models[0]["aliases"] = ["quick"]  # "sleeptime" is listed all the same
    with serving(tmp_path, models) as server:
        listed = client_for(server).models.list()
    assert [m.id for m in listed.data] == ["fast", "quick", "backup", "sleeptime"]
    assert {m.owned_by for m in listed.data} == {"sleeptime"}
    assert fake.requests == backup.requests == []  # the list, not the upstreams


def test_a_list_and_the_models_allow_list_together_stop_the_start(tmp_path: Path) -> None:
    settings = Settings(cache_dir=tmp_path, models="a").replace(
        model_list=[{"name": "a", "upstream_url": "http://127.0.0.1:9/v1"}]
    )
    app = create_app(ProxyConfig.from_settings(settings, sleep_enabled=False))
    with pytest.raises(ConfigError, match=r"\[\[model\]\] list or in `models`"), TestClient(app):
        pass


def test_a_bad_list_stops_the_settings_with_the_entry_named() -> None:
    with pytest.raises(ConfigError, match="model 'fast': fallback 'gone' names no model"):
        Settings().replace(model_list=[{"name": "fast", "fallbacks": ["gone"]}])


def test_fallbacks_follow_depth_first_each_model_once() -> None:
    entries = parse_models(
        [
            {"name": "a", "fallbacks": ["b", "c"], "upstream_url": "http://one/v1"},
            {"name": "b", "fallbacks": ["c", "d"], "upstream_url": "http://two/v1"},
            {"name": "c", "upstream_url": "http://one/v1"},
            {"name": "d", "upstream_url": "http://one/v1", "upstream_key": "other"},
        ],
        {},
    )
    made: list[tuple[str, str]] = []

    def make(url: str, key: str) -> Any:
        made.append((url, key))
        return SimpleNamespace(base_url=url, key=key)

    models = build_model_list(entries, None, make)
    route = asyncio.run(models.resolve("a"))
    assert [step.name for step in route.steps] == ["a", "b", "c", "d"]
    assert made == [("http://one/v1", ""), ("http://two/v1", ""), ("http://one/v1", "other")]
    assert route.steps[0].upstream is route.steps[2].upstream  # one pool per URL and key
