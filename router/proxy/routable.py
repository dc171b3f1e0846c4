"""Whether the router may touch a request at all, decided once, before it is asked.

A router rewrites a request for one job: answering a question about a known context in
the answer format it was trained for (a number, for the GSM8K policies). Anything else
it would bend: "Say hi." answered "Answer: 1", a request with `tools` answered with a
number and no tool call. So a request passes through as the client sent it (the model
alias and the sleeptime metadata key aside) when any of these holds, and the first that
holds is its reason (the `X-Sleeptime-Reason` header, `sleeptime_passed_through_total`):

    no_context       no context, or one the proxy has never seen (nothing learned to use)
    tools ... audio  a parameter whose answer is not a plain text message, or that the
                     router's rewrite (notes, a rung's budget and instruction) would break
    tool_messages    a conversation that carries tool results
    answer_format    the context's answer format is not one the router handles, or a
                     context the proxy inferred (never registered) declares none

A registered context whose `answer_format` is None counts as "number": the GSM8K
contexts registered before formats existed are numeric, and their benchmarks keep
routing. A context the proxy only inferred from repeated messages (a chatbot's system
prompt seen twice) has declared nothing, so nothing about its answers is assumed: it
passes through until it is registered with a format. A router's `formats` attribute
(None or absent: any) says what it handles.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from router.answer_formats import of_context

# Parameters present (and not empty) that the router never rewrites around, in the order
# their reason is reported.
PARAMETERS = (
    "tools",
    "functions",
    "function_call",
    "tool_choice",
    "logprobs",
    "top_logprobs",
    "audio",
)
TOOL_ROLES = frozenset({"tool", "function"})


def reason(body: Mapping[str, Any], context: Any, formats: frozenset[str] | None) -> str | None:
    """Why the request must pass through unchanged, or None when the router may route it.
    `body`: the request's JSON object; `context`: the proxy's record of its context."""
    return request_reason(body) or context_reason(context, formats)


def request_reason(body: Mapping[str, Any]) -> str | None:
    for name in PARAMETERS:
        if _given(body.get(name)):
            return "functions" if name == "function_call" else name
    format_ = body.get("response_format")
    if _given(format_) and not (isinstance(format_, Mapping) and format_.get("type") == "text"):
        return "response_format"  # {"type": "text"} is what no response_format means
    if (body.get("n") or 1) > 1:
        return "n"
    modalities = body.get("modalities")
    if _given(modalities) and list(modalities) != ["text"]:
        return "modalities"
    if _tool_results(body.get("messages")):
        return "tool_messages"
    return None


def context_reason(context: Any, formats: frozenset[str] | None) -> str | None:
    if context is None:
        return "no_context"
    declared = getattr(context, "answer_format", None)
    if declared is None and getattr(context, "source", "explicit") == "implicit":
        return "answer_format"
    if formats is not None and of_context(context).name not in formats:
        return "answer_format"
    return None


def _given(value: Any) -> bool:
    """Present and meant: `false`, `null` and empty lists or objects ask for nothing."""
    return value is not None and value is not False and value != [] and value != {}


def _tool_results(messages: Any) -> bool:
    if not isinstance(messages, Sequence):
        return False
    return any(isinstance(m, Mapping) and m.get("role") in TOOL_ROLES for m in messages)
