"""One way for a test to write an outcome row: what the test is about by name, the other
columns at plain defaults. (Eighteen positional columns, written out in each test file,
hid which of them a test was about.)"""

from __future__ import annotations

from typing import Any

from training.outcomes import Outcome


def outcome_row(
    context: str = "c",
    query: str | None = None,
    k: int = 0,
    rung: int = 0,
    correct: bool = True,
    tokens: int = 5,
    *,
    dataset: str = "d",
    kind: str = "final",
    queries: int = 2,
    predicted: str = "",
    gold: str = "1",
    prompt: int = 100,
    cached: int = 0,
    latency: float = 0.1,
    sleep_prompt: int = 0,
    sleep: int = 0,
    sleep_latency: float = 0.0,
    **later: Any,
) -> Outcome:
    """`tokens`: the answer's completion tokens; `sleep`: the context's sleep completion
    tokens; `later`: the columns added after the first tables (sleep_passes_spent,
    test_model, sleep_model)."""
    return Outcome(
        dataset=dataset,
        context_id=context,
        query_id=query if query is not None else f"{context}/q",
        query_kind=kind,
        queries_in_context=queries,
        sleep_passes=k,
        rung=rung,
        correct=correct,
        truncated=False,
        predicted=predicted,
        gold=gold,
        test_prompt_tokens=prompt,
        test_cached_prompt_tokens=cached,
        test_completion_tokens=tokens,
        test_latency_s=latency,
        sleep_prompt_tokens=sleep_prompt,
        sleep_completion_tokens=sleep,
        sleep_latency_s=sleep_latency,
        **later,
    )
