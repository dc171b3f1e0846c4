"""Chat completions usage: reading it whatever shape an upstream sent, and adding it up.

A request that made several upstream calls (a checked answer: two cheap answers, and
the full one when they disagree) reports their sum, in the client's usage and in its
record alike.
"""

from __future__ import annotations

from typing import Any


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
