"""What an upstream call returns, and the token estimate used when an upstream sends no usage.

Plain data, apart from any client: the offline cache (`training.llm_cache`) stores these,
and the proxy's synthetic answers count tokens with the same estimate, without importing
the openai SDK or aiohttp.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Usage:
    prompt_tokens: int
    completion_tokens: int
    cached_prompt_tokens: int = 0
    estimated: bool = False  # True when the upstream sent no usage and we estimated it


@dataclass(frozen=True)
class ChatResult:
    """`text` is the first choice's; with n > 1, `usage` still counts every choice."""

    text: str
    finish_reason: str | None
    usage: Usage
    latency_s: float  # as the caller lived it: retries and backoff included
    model: str


@dataclass(frozen=True)
class StreamDelta:
    """Content deltas carry only text; the last event carries finish_reason and usage."""

    text: str
    finish_reason: str | None = None
    usage: Usage | None = None


def estimate_tokens(text: str) -> int:
    """About four characters per token for English and code with BPE tokenizers."""
    return math.ceil(len(text) / 4)


def estimate_prompt_tokens(messages: list[dict]) -> int:
    """Text of every message plus 4 tokens each for the chat template's role markers."""
    return sum(estimate_tokens(_message_text(m)) + 4 for m in messages)


def _message_text(message: Mapping[str, Any]) -> str:
    content = message.get("content")
    if isinstance(content, str):
        return content
    if isinstance(content, list):  # content parts: only text parts count
        return "".join(p.get("text", "") for p in content if isinstance(p, Mapping))
    return ""
