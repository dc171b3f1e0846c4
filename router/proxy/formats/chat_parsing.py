"""Checking a chat completions request by hand: plain dicts, no pydantic on the hot path.

Checks are the ones that would otherwise surface as an upstream 400 with a
worse message, or as a crash inside the proxy: shape, types, roles. Fields the
proxy does not know pass through untouched, so new OpenAI parameters keep
working without a proxy release.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from router.proxy.api_errors import bad_request
from router.proxy.bodies import load_object

ROLES = frozenset({"system", "developer", "user", "assistant", "tool", "function"})
NEEDS_CONTENT = frozenset({"system", "developer", "user"})
CONTEXT_KEY = "sleeptime_context"  # in the request's `metadata`
# name: (lowest, highest), OpenAI's documented ranges; out of range is the client's mistake.
NUMBERS = {
    "temperature": (0.0, 2.0),
    "top_p": (0.0, 1.0),
    "presence_penalty": (-2.0, 2.0),
    "frequency_penalty": (-2.0, 2.0),
}
MAX_OUTPUT_TOKENS = 1 << 20  # no model answers this much; more is a bug in the client
COUNTS = {
    "max_tokens": (1, MAX_OUTPUT_TOKENS),
    "max_completion_tokens": (1, MAX_OUTPUT_TOKENS),
    "n": (1, 128),
    "top_logprobs": (0, 20),
    "seed": (-(1 << 63), (1 << 64) - 1),
}
# Known parameters of other types. Unknown names pass through untouched (the upstream decides),
# so a new OpenAI parameter, or a server's own (llama.cpp's top_k), keeps working.
TYPED: dict[str, tuple[type, ...]] = {
    "model": (str,),
    "stream": (bool,),
    "logprobs": (bool,),
    "parallel_tool_calls": (bool,),
    "store": (bool,),
    "user": (str,),
    "stop": (str, list),
    "logit_bias": (dict,),
    "response_format": (dict,),
    "stream_options": (dict,),
    "metadata": (dict,),
    "tools": (list,),
    "tool_choice": (str, dict),
    "reasoning_effort": (str,),
}


@dataclass(frozen=True)
class ChatRequest:
    raw: bytes
    body: dict[str, Any]
    messages: list[dict[str, Any]]
    stream: bool
    include_usage: bool
    context_name: str | None  # metadata.sleeptime_context, stripped before forwarding

    @property
    def model(self) -> Any:
        return self.body.get("model")


def parse_chat(raw: bytes) -> ChatRequest:
    body = load_object(raw)
    messages = _messages(body.get("messages"))
    _check_scalars(body)
    stream = body.get("stream") or False
    options = _optional(body, "stream_options", dict) or {}
    metadata = _optional(body, "metadata", dict) or {}
    name = metadata.get(CONTEXT_KEY)
    if name is not None and not isinstance(name, str):
        raise bad_request(f"metadata.{CONTEXT_KEY} must be a string", param="metadata")
    include_usage = bool(stream and options.get("include_usage"))
    return ChatRequest(raw, body, messages, bool(stream), include_usage, name)


def _messages(value: Any) -> list[dict[str, Any]]:
    if value is None:
        raise bad_request("'messages' is required", param="messages", code="missing_required")
    if not isinstance(value, list) or not value:
        raise bad_request("'messages' must be a non-empty array", param="messages")
    for index, message in enumerate(value):
        check_message(index, message)
    return value


def check_message(index: int, message: Any) -> None:
    param = f"messages[{index}]"
    if not isinstance(message, dict):
        raise bad_request(f"{param} must be an object", param=param)
    role = message.get("role")
    if role not in ROLES:
        roles = ", ".join(sorted(ROLES))
        raise bad_request(f"{param}.role must be one of {roles}; got {role!r}", param=param)
    content = message.get("content")
    if content is None and role not in NEEDS_CONTENT:
        return
    if isinstance(content, list) and all(isinstance(part, dict) for part in content):
        return
    if not isinstance(content, str):
        raise bad_request(
            f"{param}.content must be a string or an array of content parts", param=param
        )


def _check_scalars(body: dict[str, Any]) -> None:
    for name, kinds in TYPED.items():
        _optional(body, name, *kinds)
    for name, (low, high) in NUMBERS.items():
        _check_range(body, name, low, high, integer=False)
    for name, (low, high) in COUNTS.items():
        _check_range(body, name, low, high, integer=True)
    stop = body.get("stop")
    if isinstance(stop, list) and not all(isinstance(s, str) for s in stop):
        raise bad_request("'stop' must be a string or an array of strings", param="stop")


def _check_range(
    body: dict[str, Any], name: str, low: float, high: float, *, integer: bool
) -> None:
    value = body.get(name)
    if value is None:
        return
    kinds = int if integer else int | float
    if isinstance(value, bool) or not isinstance(value, kinds):
        raise bad_request(f"'{name}' must be {'an integer' if integer else 'a number'}", param=name)
    if not low <= value <= high:  # NaN fails this too
        raise bad_request(f"'{name}' must be between {low} and {high}", param=name)


def _optional(body: dict[str, Any], name: str, *kinds: type) -> Any:
    value = body.get(name)
    if value is not None and not isinstance(value, kinds):
        expected = " or ".join(_type_name(kind) for kind in kinds)
        raise bad_request(f"'{name}' must be of type {expected}", param=name)
    return value


def _type_name(kind: type) -> str:
    names = {str: "string", bool: "boolean", dict: "object", list: "array"}
    return names.get(kind, kind.__name__)
