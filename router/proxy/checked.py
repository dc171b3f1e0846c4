"""A checked answer on the learned context: two cheap answers that must agree.

One cheap answer on c' is right less often than full reasoning on c, and no
score picks out the queries where it is right. Two cheap answers on c' at
different rungs that reach the same final number are right about as often as
full reasoning on those queries in the outcome table (Multi-Query GSM8K, `program`
notes: 0.359 both ways on the 142 of 198 queries where they agreed; live on 48 other
contexts they lagged it by 0.10, see the README), so the proxy serves such an answer
and sends the others to full reasoning. Both cheap answers are asked side
by side; what all the calls cost is what the client's usage says.

An answer without a final number cannot be checked this way: it goes full.
"""

from __future__ import annotations

import json
import math
from typing import Any

from router.answers import extract_answer, normalize_number

USAGE_KEYS = ("prompt_tokens", "completion_tokens", "total_tokens")


def not_streamed(body: bytes) -> bytes:
    """The two cheap answers are compared whole before anything reaches the client."""
    data = json.loads(body)
    if not data.get("stream"):
        return body
    data.pop("stream_options", None)
    data["stream"] = False
    return json.dumps(data).encode()


def final_number(completion: dict[str, Any]) -> float | None:
    """The final number an upstream's completion states; None if cut off before one."""
    try:
        choice = completion["choices"][0]
        text = choice["message"]["content"] or ""
    except (KeyError, IndexError, TypeError):
        return None
    answer = extract_answer(text, fallback=choice.get("finish_reason") != "length")
    return None if answer is None else normalize_number(answer)


def agree(served: dict[str, Any], check: dict[str, Any]) -> bool:
    a, b = final_number(served), final_number(check)
    return a is not None and b is not None and math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-9)


def add_usage(*usages: Any) -> dict[str, int]:
    """The sum of upstream usages (missing or malformed ones count as zero)."""
    total = dict.fromkeys(USAGE_KEYS, 0)
    cached = 0
    for usage in usages:
        if not isinstance(usage, dict):
            continue
        for key in USAGE_KEYS:
            total[key] += count(usage.get(key))
        details = usage.get("prompt_tokens_details")
        if isinstance(details, dict):
            cached += count(details.get("cached_tokens"))
    if cached:
        total["prompt_tokens_details"] = {"cached_tokens": cached}  # type: ignore[assignment]
    return total


def count(value: Any) -> int:
    """A token count from a usage field, whatever an upstream put there."""
    return value if isinstance(value, int) and not isinstance(value, bool) else 0
