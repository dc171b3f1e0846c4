"""`/v1/chat/completions`: the chat completions format, as the request pipeline sees it.

Everything chat-shaped lives in this adapter and the `chat_*` modules beside it:
checking a body (`chat_parsing`), its query and context (the last user message, and
the messages before it, `router.proxy.contexts`), how a decision rewrites it
(`chat_rewrite`), the proxy's own answers (`chat_synth`), usage (`chat_usage`) and
the stream relay (`chat_relay`). See `formats/adapter.py` for the contract.
"""

from __future__ import annotations

import json
from typing import Any

from router.answer_formats import AnswerFormat
from router.proxy import contexts, routable
from router.proxy.contexts import ContextRef
from router.proxy.formats import chat_rewrite, chat_synth
from router.proxy.formats.adapter import Answer, Outgoing, Rewrite, Settle
from router.proxy.formats.chat_parsing import ChatRequest, parse_chat
from router.proxy.formats.chat_relay import StreamRelay
from router.proxy.formats.chat_usage import add_usage, usage_tokens
from router.proxy.routing import RouteDecision
from router.store.base import ContextRecord
from router.upstream import UpstreamStream


class ChatFormat:
    upstream_path = "/chat/completions"

    def parse(self, raw: bytes) -> ChatRequest:
        return parse_chat(raw)

    def identify(self, request: ChatRequest, name: str | None) -> tuple[ContextRef | None, str]:
        """The query is the last user message; the context, every message before it."""
        return contexts.identify(request.messages, name)

    def unroutable(
        self, request: ChatRequest, context: ContextRecord | None, formats: frozenset[str] | None
    ) -> str | None:
        return routable.reason(request.body, context, formats)

    def rewrite(
        self, request: ChatRequest, decision: RouteDecision, context: ContextRecord | None
    ) -> Rewrite:
        return chat_rewrite.rewrite(request, decision, context)

    def lowers_budget(self, request: ChatRequest, rewrite: Rewrite) -> bool:
        return chat_rewrite.lowers_budget(request, rewrite)

    def outgoing(
        self, request: ChatRequest, rewrite: Rewrite, *, model: str | None, stream_usage: bool
    ) -> Outgoing:
        return chat_rewrite.outgoing(request, rewrite, model, stream_usage)

    def completion(self, request_id: str, model: str, text: str) -> dict[str, Any]:
        return chat_synth.completion(request_id, model, text)

    def events(
        self, request: ChatRequest, request_id: str, model: str, text: str, usage: Any = None
    ) -> list[bytes]:
        return chat_synth.stream_events(request_id, model, text, request.include_usage, usage)

    def estimate_usage(self, text: str) -> dict[str, Any]:
        return chat_synth.usage(text)

    def not_streamed(self, body: bytes) -> bytes:
        return not_streamed(body)

    def final_answer(self, completion: dict[str, Any], answer: AnswerFormat) -> str | None:
        return final_answer(completion, answer)

    def cut_short(self, completion: dict[str, Any]) -> bool:
        """An answer stopped by its token budget (any choice: the client gets them all)."""
        choices = completion.get("choices")
        return isinstance(choices, list) and any(
            isinstance(c, dict) and c.get("finish_reason") == "length" for c in choices
        )

    def answer_of(self, completion: dict[str, Any]) -> Answer:
        text = completion["choices"][0]["message"].get("content") or ""
        return Answer(text, completion.get("model"))

    def usage_of(self, completion: dict[str, Any]) -> Any:
        return completion.get("usage")

    def with_usage(self, completion: dict[str, Any], usage: Any) -> dict[str, Any]:
        return {**completion, "usage": usage}

    def add_usage(self, *usages: Any) -> dict[str, Any]:
        return add_usage(*usages)

    def tokens(self, usage: Any) -> tuple[int, int, int]:
        return usage_tokens(usage)

    def relay(
        self, upstream: UpstreamStream, *, strip_usage: bool, before_done: Settle, spent_before: Any
    ) -> StreamRelay:
        return StreamRelay(
            upstream, strip_usage=strip_usage, before_done=before_done, spent_before=spent_before
        )


def not_streamed(body: bytes) -> bytes:
    """The cheap answers of a check are compared whole before anything reaches the client."""
    data = json.loads(body)
    if not data.get("stream"):
        return body
    data.pop("stream_options", None)
    data["stream"] = False
    return json.dumps(data).encode()


def final_answer(completion: dict[str, Any], answer: AnswerFormat) -> str | None:
    """The final answer an upstream's completion states, read as the context's answer format
    reads one; None if cut off before one."""
    try:
        choice = completion["choices"][0]
        text = choice["message"]["content"] or ""
    except (KeyError, IndexError, TypeError):
        return None
    return answer.extract(text, choice.get("finish_reason") != "length")
