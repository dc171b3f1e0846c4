"""What the router may route: a pure decision on the body, the context and its format."""

from __future__ import annotations

from typing import Any

import pytest

from router.answer_formats import of_context
from router.proxy.routable import reason
from router.store.base import ContextRecord

ASK = {"model": "m", "messages": [{"role": "user", "content": "How many?"}]}


def context(answer_format: str | None = None) -> ContextRecord:
    return ContextRecord(
        "t", "c", 1, "Facts.", "explicit", 2, "done", "notes", [], 0, None, 0.0,
        answer_format=answer_format,
    )  # fmt: skip


@pytest.mark.parametrize(
    ("extra", "why"),
    [
        ({"tools": [{"type": "function", "function": {"name": "f"}}]}, "tools"),
        ({"functions": [{"name": "f"}]}, "functions"),
        ({"function_call": "auto"}, "functions"),
        ({"tool_choice": "none"}, "tool_choice"),
        ({"response_format": {"type": "json_object"}}, "response_format"),
        ({"n": 2}, "n"),
        ({"logprobs": True}, "logprobs"),
        ({"top_logprobs": 2}, "top_logprobs"),
        ({"audio": {"voice": "alloy", "format": "wav"}}, "audio"),
        ({"modalities": ["text", "audio"]}, "modalities"),
        ({"messages": [{"role": "tool", "tool_call_id": "1", "content": "5"}]}, "tool_messages"),
    ],
)
def test_a_parameter_the_router_would_bend_passes_through(extra: dict[str, Any], why: str) -> None:
    assert reason({**ASK, **extra}, context(), None) == why


@pytest.mark.parametrize(
    "extra",
    [
        {},
        {"n": 1, "logprobs": False, "tools": [], "modalities": ["text"]},
        {"response_format": {"type": "text"}, "max_tokens": 1500, "stream": True},
    ],
)
def test_what_asks_for_nothing_else_is_routable(extra: dict[str, Any]) -> None:
    assert reason({**ASK, **extra}, context(), frozenset({"number"})) is None


def test_no_known_context_and_an_untrained_format_pass_through() -> None:
    assert reason(ASK, None, None) == "no_context"
    trained = frozenset({"number"})
    assert reason(ASK, context("text"), trained) == "answer_format"
    assert reason(ASK, context("number"), trained) is None
    assert reason(ASK, context("text"), None) is None  # the router handles any format


def test_a_context_from_before_formats_counts_as_a_number() -> None:
    """GSM8K contexts stored before answer formats existed keep routing."""
    assert of_context(context(None)).name == "number"
    assert reason(ASK, context(None), frozenset({"number"})) is None
    assert reason(ASK, context(None), frozenset({"span"})) == "answer_format"
