"""Replay in dollars: every call a query makes priced at the model that answered it, plus
its share of its context's sleep-time bill at the sleeping model's discounted price."""

from __future__ import annotations

import numpy as np
import pytest
from outcome_rows import outcome_row

from policies import AlwaysSleep, ModelPrice, TestTimeOnly
from training.outcomes import Outcome
from training.replay import Decisions, build_table, dollar_cost, evaluate, query_dollars

PRICES = {
    "big": ModelPrice(input=1.0, output=10.0, cached_input=0.5, sleep_discount=0.5),
    "small": ModelPrice(input=0.1, output=1.0),
}


def outcome(ctx: str, q: str, k: int, rung: int, tokens: int, model: str = "") -> Outcome:
    sleep = 200 if k else 0  # completion tokens of the context's sleep; 100 prompt tokens
    return outcome_row(ctx, q, k, rung, True, tokens, dataset="t", cached=40, latency=0.5,
                       sleep_prompt=100 if k else 0, sleep=sleep, test_model=model)  # fmt: skip


def rows(small_on_learned: bool = False) -> list[Outcome]:
    out = []
    for ctx in ("a", "b"):
        for q in ("q0", "q1"):
            qid, model = f"{ctx}/{q}", "small" if small_on_learned else ""
            out += [outcome(ctx, qid, 0, 0, 5), outcome(ctx, qid, 0, 1, 300)]
            out += [outcome(ctx, qid, 1, 0, 4, model), outcome(ctx, qid, 1, 1, 100, model)]
    return out


def big_call(completion: int) -> float:
    return (1.0 * 60 + 0.5 * 40 + 10.0 * completion) / 1e6  # 100 prompt tokens, 40 cached


SLEEP_SHARE = (1.0 * 100 + 10.0 * 200) * 0.5 / 1e6 / 2  # half price, 2 queries per context


def test_a_test_time_only_policy_pays_its_calls_only() -> None:
    table = build_table(rows(), prices=PRICES, model="big")
    assert dollar_cost(TestTimeOnly(1), table) == pytest.approx(big_call(300))
    assert dollar_cost(TestTimeOnly(0), table) == pytest.approx(big_call(5))


def test_sleep_time_work_is_shared_by_the_contexts_queries_at_its_discount() -> None:
    table = build_table(rows(), prices=PRICES, model="big")
    assert dollar_cost(AlwaysSleep(passes=1, rung=0), table) == pytest.approx(
        big_call(4) + SLEEP_SHARE
    )


def test_a_small_model_on_the_learned_context_is_priced_at_its_own_rate() -> None:
    table = build_table(rows(small_on_learned=True), prices=PRICES, model="big")
    small_call = (0.1 * 100 + 1.0 * 4) / 1e6  # no cached-input price: cached at the input rate
    assert dollar_cost(AlwaysSleep(passes=1, rung=0), table) == pytest.approx(
        small_call + SLEEP_SHARE
    )
    assert dollar_cost(TestTimeOnly(1), table) == pytest.approx(big_call(300))


def test_an_escalated_check_pays_every_call_it_made() -> None:
    table = build_table(rows(), prices=PRICES, model="big")
    n = len(table.query_ids)
    ones, zeros = np.ones(n, dtype=int), np.zeros(n, dtype=int)
    # enriched at rung 0 checked against rung 1 on c'; no answer was extracted (predicted ""),
    # so the check never agrees and every query falls back to rung 1 on c
    checked = Decisions(ones, np.ones(2, dtype=int), ones, zeros, ones, ones, zeros.astype(bool))
    dollars = query_dollars(table, checked)
    expected = big_call(4) + big_call(100) + big_call(300) + SLEEP_SHARE
    assert dollars == pytest.approx(np.full(n, expected))


def test_without_a_price_table_there_are_no_dollars_and_tokens_are_unchanged() -> None:
    plain, priced = build_table(rows()), build_table(rows(), prices=PRICES, model="big")
    assert dollar_cost(TestTimeOnly(1), plain) is None
    assert evaluate(AlwaysSleep(1, 0), plain) == evaluate(AlwaysSleep(1, 0), priced)


def test_a_subset_keeps_the_dollars_of_its_contexts() -> None:
    table = build_table(rows(small_on_learned=True), prices=PRICES, model="big")
    only_a = table.subset(np.array([True, False]))
    assert only_a.test_dollars.shape == (2, 2, 2) and only_a.sleep_dollars.shape == (1, 2)
    assert dollar_cost(AlwaysSleep(1, 0), only_a) == dollar_cost(AlwaysSleep(1, 0), table)
