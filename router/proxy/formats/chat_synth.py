"""Answers the proxy writes itself, shaped like an upstream's: the "cached" route's, and a
checked answer's when the client asked for a stream."""

from __future__ import annotations

import json
import time
from typing import Any

from router.upstream import DONE_EVENT, estimate_tokens


def completion(request_id: str, model: str, answer: str) -> dict[str, Any]:
    return {
        "id": f"chatcmpl-{request_id}",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": answer},
                "finish_reason": "stop",
            }
        ],
        "usage": usage(answer),
    }


def usage(answer: str) -> dict[str, int]:
    """No upstream tokens were spent; the answer's own length is the only test-time cost."""
    completion_tokens = estimate_tokens(answer)
    return {
        "prompt_tokens": 0,
        "completion_tokens": completion_tokens,
        "total_tokens": completion_tokens,
    }


def stream_events(
    request_id: str,
    model: str,
    answer: str,
    include_usage: bool,
    spent: dict[str, Any] | None = None,
) -> list[bytes]:
    """`spent`: the usage to report when upstream calls wrote the answer."""
    base = {
        "id": f"chatcmpl-{request_id}",
        "object": "chat.completion.chunk",
        "created": int(time.time()),
        "model": model,
    }
    chunks: list[dict[str, Any]] = [
        {**base, "choices": [_choice({"role": "assistant", "content": answer}, None)]},
        {**base, "choices": [_choice({}, "stop")]},
    ]
    if include_usage:
        chunks.append({**base, "choices": [], "usage": spent or usage(answer)})
    return [b"data: " + json.dumps(c).encode() + b"\n\n" for c in chunks] + [DONE_EVENT]


def _choice(delta: dict[str, Any], finish_reason: str | None) -> dict[str, Any]:
    return {"index": 0, "delta": delta, "finish_reason": finish_reason}
