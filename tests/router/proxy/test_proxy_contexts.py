"""Contexts: found implicitly or named, registered ahead of time, versioned, tenant-scoped."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest
from fake_upstream import FakeUpstream, completion
from fastapi.testclient import TestClient
from proxy_fakes import KEY_A, KEY_B

from router.proxy.api_errors import ApiError
from router.proxy.app import create_app  # noqa: F401  (the app under test, via fixtures)
from router.proxy.contexts import context_hash, explicit_name, identify
from router.proxy.tenants import Tenants, load_or_create_salt

DOC = "Janet's ducks lay 16 eggs per day. She eats 3 for breakfast and bakes with 4."
CONTEXT = [{"role": "system", "content": DOC}]


def ask(question: str, context: list[dict] = CONTEXT) -> list[dict]:
    return [*context, {"role": "user", "content": question}]


def auth(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


# Identification.


def test_implicit_hash_ignores_whitespace_but_not_words_or_roles() -> None:
    base = context_hash(CONTEXT)
    spaced = [
        {
            "role": "system",
            "content": "  Janet's ducks lay 16 eggs\nper day.  She eats 3 "
            "for breakfast\r\n and bakes with 4.\n",
        }
    ]
    assert context_hash(spaced) == base
    assert context_hash([{"role": "user", "content": DOC}]) != base
    assert context_hash([{"role": "system", "content": DOC.replace("16", "17")}]) != base


def test_text_parts_hash_like_a_string() -> None:
    parts = [{"role": "system", "content": [{"type": "text", "text": DOC}]}]
    assert context_hash(parts) == context_hash(CONTEXT)


def test_query_is_the_last_user_message_and_context_what_precedes_it() -> None:
    messages = [
        *ask("first?"),
        {"role": "assistant", "content": "9"},
        {"role": "user", "content": "and?"},
    ]
    ref, query = identify(messages, None)
    assert query == "and?" and ref is not None
    assert ref.context_id == context_hash(messages[:3]) and ref.source == "implicit"
    assert "assistant: 9" in ref.text


def test_a_lone_question_has_no_context() -> None:
    assert identify([{"role": "user", "content": "hi"}], None) == (None, "hi")


def test_named_context_wins_and_header_beats_metadata() -> None:
    ref, _ = identify(ask("q"), explicit_name("doc-1", "other"))
    assert ref is not None and (ref.context_id, ref.source) == ("doc-1", "explicit")
    assert explicit_name(None, "meta-id") == "meta-id"
    with pytest.raises(ApiError):
        explicit_name("bad id!", None)


def test_surrogates_do_not_break_hashing_or_text() -> None:
    ref, _ = identify(ask("q", [{"role": "system", "content": "a\ud800b"}]), None)
    assert ref is not None and ref.text == "a?b"


def test_tenant_hash_is_salted_and_stable(tmp_path: Path) -> None:
    salt = load_or_create_salt(tmp_path / "salt")
    assert load_or_create_salt(tmp_path / "salt") == salt
    assert (tmp_path / "salt").stat().st_mode & 0o777 == 0o600
    one, other = Tenants(salt), Tenants(b"x" * 32)
    assert one.identify(f"Bearer {KEY_A}") == one.identify(f"bearer  {KEY_A} ")
    assert one.identify(f"Bearer {KEY_A}") != other.identify(f"Bearer {KEY_A}")
    assert one.identify(f"Bearer {KEY_A}") != one.identify(f"Bearer {KEY_B}")
    assert KEY_A not in one.identify(f"Bearer {KEY_A}")
    for keyless in (None, "Bearer ", "Basic abc"):
        with pytest.raises(ValueError):  # no key, no tenant: the gate refuses such requests
            one.identify(keyless)


# Through the proxy.


@pytest.fixture
def parked(make_client: Callable[..., TestClient]) -> TestClient:
    """Sleep-time work is queued but never runs: the upstream is never idle enough."""
    return make_client(sleep_enabled=True, max_inflight_for_sleep=-1)


def test_headers_name_the_context(client: TestClient, fake: FakeUpstream) -> None:
    fake.enqueue(completion("9"), completion("9"))
    implicit = client.post("/v1/chat/completions", json={"model": "m", "messages": ask("q")})
    assert implicit.headers["x-sleeptime-context"] == context_hash(CONTEXT)
    named = client.post(
        "/v1/chat/completions",
        json={
            "model": "m",
            "messages": ask("q"),
            "metadata": {"sleeptime_context": "doc-1", "k": "v"},
        },
    )
    assert named.headers["x-sleeptime-context"] == "doc-1"
    assert fake.requests[1].json["metadata"] == {"k": "v"}  # our key does not reach the upstream


def test_register_then_read(parked: TestClient) -> None:
    client = parked
    created = client.post("/v1/contexts", json={"id": "doc-1", "context": DOC}, headers=auth(KEY_A))
    assert created.status_code == 200
    view = created.json()
    assert (view["id"], view["version"], view["status"]) == ("doc-1", 1, "queued")
    got = client.get("/v1/contexts/doc-1", headers=auth(KEY_A)).json()
    assert got["learned_context"] is None and got["anticipated"] == []
    assert got["expected_queries"] is None


def test_expected_queries_is_stored_and_shown(parked: TestClient) -> None:
    client = parked
    body = {"id": "doc-1", "context": DOC, "expected_queries": 4}
    assert client.post("/v1/contexts", json=body).json()["expected_queries"] == 4.0
    again = client.post("/v1/contexts", json={"id": "doc-1", "context": DOC}).json()
    assert again["expected_queries"] == 4.0  # re-registering without it keeps it


def test_registered_text_matches_the_same_system_prompt(
    parked: TestClient, fake: FakeUpstream
) -> None:
    client = parked
    created = client.post("/v1/contexts", json={"context": DOC}).json()
    fake.enqueue(completion("9"))
    response = client.post("/v1/chat/completions", json={"model": "m", "messages": ask("q")})
    assert response.headers["x-sleeptime-context"] == created["id"] == context_hash(CONTEXT)


def test_reregistering_new_text_makes_a_new_version(parked: TestClient) -> None:
    client = parked
    client.post("/v1/contexts", json={"id": "doc", "context": "v1 text"})
    same = client.post("/v1/contexts", json={"id": "doc", "context": "v1 text"}).json()
    changed = client.post("/v1/contexts", json={"id": "doc", "context": "v2 text"}).json()
    assert same["version"] == 1 and changed["version"] == 2 and changed["status"] == "queued"


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"context": ""},
        {"context": 3},
        {"messages": "x"},
        {"context": "t", "id": "a b"},
        {"context": "t", "id": 5},
        {"messages": [{"role": "nobody", "content": "x"}]},
        {"context": "t", "expected_queries": 0},
        {"context": "t", "expected_queries": -2},
        {"context": "t", "expected_queries": "3"},
        {"context": "t", "expected_queries": True},
        {"context": "t", "expected_queries": 1e12},
    ],
)
def test_bad_registrations_are_400(client: TestClient, body: dict) -> None:
    response = client.post("/v1/contexts", json=body)
    assert response.status_code == 400 and "error" in response.json()


def test_context_seen_twice_is_queued(parked: TestClient, fake: FakeUpstream) -> None:
    client = parked
    context_id = context_hash(CONTEXT)
    for _ in range(2):
        fake.enqueue(completion("9"))
        client.post("/v1/chat/completions", json={"model": "m", "messages": ask("q")})
        client.app.state.proxy.records.writer.flush()  # type: ignore[attr-defined]
        view = client.get(f"/v1/contexts/{context_id}").json()
    assert (view["seen"], view["status"], view["source"]) == (2, "queued", "implicit")


def test_tenants_never_see_each_others_contexts(
    parked: TestClient, fake: FakeUpstream, tmp_path: Path
) -> None:
    client = parked
    client.post("/v1/contexts", json={"id": "doc", "context": DOC}, headers=auth(KEY_A))
    assert client.get("/v1/contexts/doc", headers=auth(KEY_B)).status_code == 404
    keyless = client.get("/v1/contexts/doc", headers={"Authorization": ""})
    assert keyless.status_code == 401  # no key, no tenant: no shared "anonymous" one
    for key in (KEY_A, KEY_B, KEY_A, KEY_B):
        fake.enqueue(completion("9"))
        client.post(
            "/v1/chat/completions", json={"model": "m", "messages": ask("q")}, headers=auth(key)
        )
    state = client.app.state.proxy  # type: ignore[attr-defined]
    state.records.writer.flush()
    hashes = {state.tenants.identify(f"Bearer {k}") for k in (KEY_A, KEY_B)}
    records = [state.store.get_context(t, context_hash(CONTEXT)) for t in hashes]
    assert [r.seen for r in records] == [2, 2]  # counted apart, not 4 for one
    client.post("/v1/feedback", json={"request_id": "x", "correct": True}, headers=auth(KEY_B))
    raw = b"".join(p.read_bytes() for p in tmp_path.rglob("*") if p.is_file())
    assert raw and KEY_A.encode() not in raw and KEY_B.encode() not in raw
    assert all(key not in json.dumps([r.headers for r in fake.requests]) for key in (KEY_A, KEY_B))
