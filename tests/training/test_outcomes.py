"""Outcome tables: the columns added for voted passes round-trip, and a table written before
them (a committed one) still loads, each row having spent exactly its budget."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from training.outcomes import OUTCOMES, Outcome, read_outcomes, write_outcomes

ROOT = Path(__file__).resolve().parents[2]
OLD_TABLE = ROOT / "benchmarks" / "gsm8k-multi-qwen2.5-coder-1.5b" / OUTCOMES

ROW = Outcome(
    dataset="d",
    context_id="c",
    query_id="q",
    query_kind="final",
    queries_in_context=1,
    sleep_passes=4,
    rung=0,
    correct=True,
    truncated=False,
    predicted="9",
    gold="9",
    test_prompt_tokens=10,
    test_cached_prompt_tokens=0,
    test_completion_tokens=2,
    test_latency_s=0.1,
    sleep_prompt_tokens=200,
    sleep_completion_tokens=100,
    sleep_latency_s=1.0,
)


def test_a_table_without_the_new_columns_loads_with_their_defaults() -> None:
    rows = read_outcomes(OLD_TABLE)
    assert rows and all(r.sleep_passes_spent == r.sleep_passes for r in rows)
    assert {r.test_model for r in rows} == {r.sleep_model for r in rows} == {""}
    assert any(r.sleep_passes > 0 for r in rows)


def test_passes_spent_defaults_to_the_budget_and_round_trips(tmp_path: Path) -> None:
    assert ROW.sleep_passes_spent == 4
    adaptive = dataclasses.replace(
        ROW, sleep_passes_spent=2, test_model="qwen-0.5b", sleep_model="qwen-1.5b"
    )
    write_outcomes(tmp_path / OUTCOMES, [ROW, adaptive])
    assert read_outcomes(tmp_path / OUTCOMES) == [ROW, adaptive]
