"""The chat completions adapter: the format contract, and what is chat's own (reading a
final number, adding usages, the body a decision sends)."""

from __future__ import annotations

import json
from typing import Any

import pytest
from format_contract import FormatContract, learned

from router.answer_formats import FORMATS
from router.ladder import rung
from router.proxy.formats.chat import ChatFormat, final_answer, not_streamed
from router.proxy.formats.chat_usage import add_usage
from router.proxy.routing import RouteDecision


def chat_body(query: str, context: str | None = None, *, stream: bool = False) -> bytes:
    system = [{"role": "system", "content": context}] if context is not None else []
    body: dict[str, Any] = {"model": "m", "messages": [*system, {"role": "user", "content": query}]}
    if stream:
        body["stream"] = True
    return json.dumps(body).encode()


class TestChatFormat(FormatContract):
    @pytest.fixture
    def adapter(self) -> ChatFormat:
        return ChatFormat()

    @pytest.fixture
    def sample(self) -> Any:
        return chat_body


def said(text: str, finish_reason: str = "stop") -> dict:
    return {"choices": [{"message": {"content": text}, "finish_reason": finish_reason}]}


def test_no_number_or_a_cut_off_answer_has_no_final_number() -> None:
    number = FORMATS["number"]
    assert final_answer(said("I cannot tell."), number) is None
    assert final_answer(said("16 - 3 - 4 = 9", finish_reason="length"), number) is None
    assert final_answer({"choices": []}, number) is None and final_answer({}, number) is None
    assert final_answer(said("She makes $18.00 a day.\nAnswer: 18"), number) == "18"


def test_usages_add_up_and_malformed_ones_count_as_zero() -> None:
    a = {"prompt_tokens": 10, "completion_tokens": 2, "total_tokens": 12,
         "prompt_tokens_details": {"cached_tokens": 8}}  # fmt: skip
    b = {"prompt_tokens": 5, "completion_tokens": True, "total_tokens": "7"}
    assert add_usage(a, b, None) == {
        "prompt_tokens": 15,
        "completion_tokens": 2,
        "total_tokens": 12,
        "prompt_tokens_details": {"cached_tokens": 8},
    }


def test_the_cheap_answers_are_asked_whole() -> None:
    body = json.dumps({"stream": True, "stream_options": {"include_usage": True}, "n": 1})
    assert json.loads(not_streamed(body.encode())) == {"stream": False, "n": 1}
    plain = b'{"n": 1}'
    assert not_streamed(plain) is plain


def sent(raw: bytes, decision: RouteDecision, *, model: str | None = None) -> dict[str, Any]:
    chat = ChatFormat()
    parsed = chat.parse(raw)
    rewrite = chat.rewrite(parsed, decision, learned("- 9 eggs"))
    return json.loads(chat.outgoing(parsed, rewrite, model=model, stream_usage=True).body)


def test_a_rung_caps_a_cheap_attempts_budget_unless_the_client_asked_for_less() -> None:
    limit, cheap = rung("answer").max_tokens, RouteDecision("enriched", rung="answer")
    assert sent(chat_body("q"), cheap)["max_tokens"] == limit
    body = {"messages": [{"role": "user", "content": "q"}]}
    assert sent(json.dumps({**body, "max_tokens": 3}).encode(), cheap)["max_tokens"] == 3
    wide = json.dumps({**body, "max_completion_tokens": 1500}).encode()
    assert sent(wide, cheap)["max_completion_tokens"] == limit


def test_the_full_route_never_touches_the_clients_budget() -> None:
    full = RouteDecision("full", rung="answer")
    assert "max_tokens" not in sent(chat_body("q"), full)
    wide = json.dumps({"messages": [{"role": "user", "content": "q"}], "max_tokens": 1500})
    assert sent(wide.encode(), full)["max_tokens"] == 1500


def test_a_cut_answer_is_told_apart() -> None:
    chat = ChatFormat()
    assert chat.cut_short(said("16 - 3", finish_reason="length"))
    assert not chat.cut_short(said("Answer: 9")) and not chat.cut_short({"choices": None})


def test_the_sleeptime_metadata_key_never_leaves() -> None:
    def with_metadata(metadata: dict[str, str]) -> bytes:
        messages = [{"role": "user", "content": "q"}]
        return json.dumps({"messages": messages, "metadata": metadata}).encode()

    mixed = with_metadata({"sleeptime_context": "doc", "mine": "x"})
    assert sent(mixed, RouteDecision())["metadata"] == {"mine": "x"}
    assert "metadata" not in sent(with_metadata({"sleeptime_context": "doc"}), RouteDecision())


def test_stream_usage_is_asked_for_and_stripped_later() -> None:
    chat = ChatFormat()
    parsed = chat.parse(chat_body("q", stream=True))
    outgoing = chat.outgoing(parsed, {}, model=None, stream_usage=True)
    assert outgoing.strip_usage
    assert json.loads(outgoing.body)["stream_options"] == {"include_usage": True}
    assert not chat.outgoing(parsed, {}, model=None, stream_usage=False).strip_usage


def test_enriched_needs_a_learned_context() -> None:
    chat = ChatFormat()
    parsed = chat.parse(chat_body("q", "facts"))
    with pytest.raises(ValueError):
        chat.rewrite(parsed, RouteDecision("enriched"), None)
