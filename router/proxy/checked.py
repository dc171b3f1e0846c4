"""A checked answer on the learned context: cheap voters that must agree.

One cheap answer on c' is right less often than full reasoning on c, and no
score picks out the queries where it is right. Voters that reach the same final
number pick them out: a second cheap answer on c' at another rung (asked side by
side), and the nearest anticipated answer, computed at sleep time, so free at
test time. In the Multi-Query GSM8K `program` table, two rungs that agreed were
right as often as full reasoning on those queries (live on 48 other contexts they
lagged it); the cheap answer and the anticipated one that agreed were right more
often than full reasoning (35 vs 29 of 88 queries). The proxy serves such an
answer and sends the others to full reasoning; what all the calls cost is what
the client's usage says.

An answer without a final number cannot be checked this way: it goes full.
"""

from __future__ import annotations

import json
import math
from typing import Any

from router.grading import extract_answer, normalize_number


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


def agree(*completions: dict[str, Any], anticipated: str | None = None) -> bool:
    """Every completion states the same final number, and so does the anticipated answer
    when one is given."""
    values = [final_number(c) for c in completions]
    if anticipated is not None:
        values.append(normalize_number(anticipated))
    first = values[0] if values else None
    return first is not None and all(
        v is not None and math.isclose(v, first, rel_tol=1e-9, abs_tol=1e-9) for v in values
    )


def add_usage(*usages: Any) -> dict[str, int]:
    """The sum of upstream usages (missing or malformed ones count as zero)."""
    prompt = completion = total = cached = 0
    for usage in usages:
        p, c, h = usage_tokens(usage)
        prompt, completion, cached = prompt + p, completion + c, cached + h
        total += _count(usage.get("total_tokens")) if isinstance(usage, dict) else 0
    summed = {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": total}
    if cached:
        summed["prompt_tokens_details"] = {"cached_tokens": cached}  # type: ignore[assignment]
    return summed


def usage_tokens(usage: Any) -> tuple[int, int, int]:
    """(prompt, completion, cached) from an upstream's usage, whatever shape it came in."""
    if not isinstance(usage, dict):
        return 0, 0, 0
    details = usage.get("prompt_tokens_details")
    cached = details.get("cached_tokens") if isinstance(details, dict) else 0
    return (
        _count(usage.get("prompt_tokens")),
        _count(usage.get("completion_tokens")),
        _count(cached),
    )


def _count(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0
