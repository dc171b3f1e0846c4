"""How a routing decision changes a chat completions request, and the bytes that go upstream.

The body goes out as the client's own bytes unless something had to change: the
model alias, the sleeptime metadata key, the learned notes and a rung's budget of
the decision, stream usage the proxy asks for on the client's behalf. Fields the
proxy does not know pass through untouched.
"""

from __future__ import annotations

import json
from typing import Any

from router.answer_formats import AnswerFormat, answer_format, of_context
from router.answering import NOTES_HINT, notes_for
from router.ladder import Rung, rung
from router.proxy.formats.adapter import Outgoing, Rewrite
from router.proxy.formats.chat_parsing import CONTEXT_KEY, ChatRequest
from router.proxy.routing import RouteDecision
from router.store.base import ContextRecord

BUDGET_KEYS = ("max_tokens", "max_completion_tokens")


def rewrite(
    chat: ChatRequest, decision: RouteDecision, context: ContextRecord | None
) -> dict[str, Any]:
    """The body fields the decision replaces: the messages (notes, the rung's instruction)
    and, on the learned context, the rung's token budget (the full route keeps the
    client's: it is what an answer cut by a budget escalates to); empty when the
    client's request goes as it is."""
    changes = messages_for(decision, context, chat.messages)
    if decision.rung and decision.route == "enriched":
        extra = of_context(context).extra_tokens
        changes.update(_budget(chat.body, rung(decision.rung).max_tokens + extra))
    return changes



def lowers_budget(chat: ChatRequest, rewrite: Rewrite) -> bool:
    """Whether the rewrite caps the answer below what the client allowed (or caps one the
    client left unbounded): an answer cut there was cut by the proxy, and is escalated."""
    for key in BUDGET_KEYS:
        given = chat.body.get(key)
        if key in rewrite and (not given or rewrite[key] < given):
            return True
    return False


def messages_for(
    decision: RouteDecision, context: ContextRecord | None, messages: list[dict[str, Any]]
) -> dict[str, Any]:
    """{"messages": ...} to send instead of the client's, or {} to send theirs as they are."""
    if decision.route == "cached":
        return {}
    rewritten = messages
    if decision.route == "enriched":
        if context is None or not context.learned:
            raise ValueError("the enriched route needs a context with a learned context")
        notes = notes_for(context.learned, _question(messages), of_context(context))
        rewritten = enrich(rewritten, notes) if notes else rewritten
    if decision.rung:
        rewritten = with_budget(rewritten, rung(decision.rung), of_context(context))
    return {} if rewritten is messages else {"messages": rewritten}


def outgoing(
    chat: ChatRequest, rewrite: Rewrite, model: str | None, stream_usage: bool
) -> Outgoing:
    """`model`: the upstream's name for "sleeptime" (None: the client's model stands)."""
    body = chat.body
    changes: dict[str, Any] = {} if model is None else {"model": model}
    changes.update(rewrite)
    metadata = body.get("metadata")
    if isinstance(metadata, dict) and CONTEXT_KEY in metadata:
        changes["metadata"] = {k: v for k, v in metadata.items() if k != CONTEXT_KEY} or None
    add_usage = chat.stream and not chat.include_usage and stream_usage
    if add_usage:
        changes["stream_options"] = {**(body.get("stream_options") or {}), "include_usage": True}
    if not changes:
        return Outgoing(chat.raw)
    merged = {k: v for k, v in {**body, **changes}.items() if v is not None or k not in changes}
    return Outgoing(json.dumps(merged).encode(), add_usage)


def with_budget(
    messages: list[dict[str, Any]], budget: Rung, fmt: AnswerFormat | None = None
) -> list[dict[str, Any]]:
    """The rung's instruction, in the context's answer format, closes the query: small
    models follow the last instruction they read, and the upstream's max_tokens (set by the
    proxy) enforces the rest."""
    last_user = max(i for i, m in enumerate(messages) if m.get("role") == "user")
    query = messages[last_user]
    note = f"Answer budget: {(fmt or answer_format(None)).instruction(budget.effort)}"
    content = query.get("content")
    if isinstance(content, list):
        content = [*content, {"type": "text", "text": note}]
    else:
        content = f"{content or ''}\n\n{note}"
    return [*messages[:last_user], {**query, "content": content}, *messages[last_user + 1 :]]


def enrich(messages: list[dict[str, Any]], notes: str) -> list[dict[str, Any]]:
    """The notes follow the context part and precede the query (answering's prompt order), so
    every query of one context still shares the context's prefix for the upstream's cache."""
    last_user = max(i for i, m in enumerate(messages) if m.get("role") == "user")
    note = {"role": "system", "content": f"{notes}\n\n{NOTES_HINT}"}
    return [*messages[:last_user], note, *messages[last_user:]]


def _question(messages: list[dict[str, Any]]) -> str:
    """The last user message's text: what a format that carries matched notes matches."""
    content = next((m.get("content") for m in reversed(messages) if m.get("role") == "user"), "")
    if isinstance(content, list):
        return " ".join(p.get("text", "") for p in content if isinstance(p, dict))
    return content if isinstance(content, str) else ""


def _budget(body: dict[str, Any], limit: int) -> dict[str, int]:
    """The rung's token budget, or the client's where the client asked for less."""
    given = {k: body[k] for k in BUDGET_KEYS if body.get(k)}
    if not given:
        return {"max_tokens": limit}
    return {k: min(v, limit) for k, v in given.items()}
