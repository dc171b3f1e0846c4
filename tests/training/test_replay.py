import numpy as np
import pytest
from outcome_rows import outcome_row

from policies import AlwaysSleep, Learned, Prices, TestTimeOnly, Threshold
from training.outcome_features import QueryFeatureRow
from training.outcomes import Outcome
from training.replay import build_table, evaluate


def outcome(ctx: str, q: str, k: int, rung: int, correct: bool, tokens: int,
            sleep: int = 0) -> Outcome:  # fmt: skip
    return outcome_row(ctx, q, k, rung, correct, tokens, dataset="t", cached=40, latency=0.5,
                       sleep=sleep)  # fmt: skip


def feature(q: str, k: int, right: bool, words: int = 0) -> QueryFeatureRow:
    return QueryFeatureRow("c", q, k, 0.9, 0.1, "1", 1, 1.0, right, 1, 1.0, 1.0, 0, 10, 2, words)


@pytest.fixture
def table():
    rows = []
    for ctx in ("a", "b"):
        for q in ("q0", "q1"):
            qid = f"{ctx}/{q}"
            rows += [outcome(ctx, qid, 0, 0, False, 5), outcome(ctx, qid, 0, 1, True, 300)]
            rows += [outcome(ctx, qid, 1, 0, ctx == "a", 4, sleep=200),
                     outcome(ctx, qid, 1, 1, True, 100, sleep=200)]  # fmt: skip
    features = [feature("a/q0", 1, True), feature("a/q1", 1, False),
                feature("b/q0", 1, True), feature("b/q1", 1, True)]  # fmt: skip
    confidence = {("a/q0", 1): 0.95, ("a/q1", 1): 0.2, ("b/q0", 1): 0.99, ("b/q1", 1): 0.5}
    return build_table(rows, features, cached_confidence=confidence,
                       enriched_confidence={key: 0.6 for key in confidence})  # fmt: skip


def test_test_time_only_reads_the_full_route(table) -> None:
    cheap, rich = evaluate(TestTimeOnly(0), table), evaluate(TestTimeOnly(1), table)
    assert (cheap.accuracy, rich.accuracy) == (0.0, 1.0)
    assert rich.cost == pytest.approx(10 * 300) and rich.sleep_tokens == 0
    assert rich.full_cost == pytest.approx(10 * (300 + 0.25 * 60 + 0.125 * 40))
    charged = evaluate(TestTimeOnly(1), table, Prices(charge_prompt=True))
    assert charged.cost == charged.full_cost == rich.full_cost  # the price-table cost


def test_always_sleep_amortizes_sleep_tokens_over_the_context(table) -> None:
    result = evaluate(AlwaysSleep(passes=1, rung=0), table)
    assert result.accuracy == 0.5  # right on context a only
    assert result.cost == pytest.approx(10 * 4 + 200 / 2)
    assert result.enriched_share == 1.0 and result.missing == 0


def test_threshold_serves_confident_queries_from_cache(table) -> None:
    result = evaluate(Threshold(passes=1, cached_threshold=0.9, enriched_threshold=0.55,
                                enriched_rung=1, full_rung=1), table)  # fmt: skip
    # a/q0 and b/q0 cached (both right); a/q1 and b/q1 enriched at rung 1 (right).
    assert result.cached_share == 0.5 and result.cached_wrong_rate == 0.0
    assert result.accuracy == 1.0
    assert result.cost == pytest.approx((10 * 100 * 2) / 4 + 100)
    assert result.latency_s == pytest.approx(0.25)


def test_cached_wrong_rate_counts_wrong_cached_answers(table) -> None:
    result = evaluate(Threshold(passes=1, cached_threshold=0.1), table)
    assert result.cached_share == 1.0
    assert result.cached_wrong_rate == pytest.approx(0.25)
    assert result.cost == pytest.approx(100) and result.test_tokens == 0


def test_prices_change_the_tradeoff(table) -> None:
    cheap_test = Prices(test_ratio=1.0)
    assert evaluate(TestTimeOnly(1), table, cheap_test).cost == pytest.approx(300)


def test_subset_keeps_whole_contexts(table) -> None:
    only_b = table.subset(np.array([False, True]))
    assert list(only_b.contexts) == ["b"] and len(only_b.query_ids) == 2
    assert evaluate(AlwaysSleep(1, 0), only_b).accuracy == 0.0


def test_the_word_limit_sends_long_queries_to_the_full_route() -> None:
    rows = []
    for qid in ("a/q0", "a/q1"):
        rows += [outcome("a", qid, 0, 1, True, 300), outcome("a", qid, 1, 0, False, 4, sleep=20)]
    features = [feature("a/q0", 1, False, words=5), feature("a/q1", 1, False, words=20)]
    table = build_table(rows, features, enriched_confidence={("a/q0", 1): 0.6, ("a/q1", 1): 0.6})
    policy = Learned(sleep_min_value=0.0, enriched_threshold=0.5, enriched_rung=0, full_rung=1)
    limited = evaluate(Learned(**{**policy.params(), "enriched_max_words": 10}), table)
    assert evaluate(policy, table).enriched_share == 1.0
    assert (limited.enriched_share, limited.accuracy) == (0.5, 0.5)  # a/q1 (20 words) is full


def test_a_checked_answer_is_served_where_two_rungs_agree_else_full() -> None:
    """a/q0: both rungs on c' say 7 (served, rung 0 right); a/q1: 7 vs 8 (full, right);
    a/q2: rung 0 has no number (full). Every call is paid for."""

    def said(qid: str, k: int, rung: int, correct: bool, tokens: int, predicted: str):
        o = outcome("a", qid, k, rung, correct, tokens, sleep=30 if k else 0)
        return Outcome(**{**o.__dict__, "predicted": predicted})

    rows = [
        said("a/q0", 1, 0, True, 4, "7"), said("a/q0", 1, 1, True, 20, "7.0"),
        said("a/q1", 1, 0, False, 4, "7"), said("a/q1", 1, 1, False, 20, "8"),
        said("a/q2", 1, 0, False, 4, ""), said("a/q2", 1, 1, False, 20, "5"),
    ]  # fmt: skip
    rows += [said(q, 0, 2, True, 300, "9") for q in ("a/q0", "a/q1", "a/q2")]
    table = build_table(rows)
    unchecked = Learned(sleep_min_value=0.0, enriched_threshold=0.0, cached_threshold=1.01,
                        enriched_rung=0, full_rung=2)  # fmt: skip
    checked = Learned(**{**unchecked.params(), "check_rung": 1})
    plain, result = evaluate(unchecked, table), evaluate(checked, table)
    assert (plain.accuracy, plain.test_tokens) == (pytest.approx(1 / 3), 4)
    assert result.accuracy == 1.0 and result.missing == 0
    assert result.test_tokens == pytest.approx((24 + 324 + 324) / 3)
    assert (result.enriched_share, result.escalated_share) == (pytest.approx(1 / 3),
                                                               pytest.approx(2 / 3))  # fmt: skip
    assert result.cost == pytest.approx(10 * result.test_tokens + 30 / 2)


def test_the_nearest_anticipated_answer_votes_for_free() -> None:
    """a/q0: rung 0 says 7, anticipated 7 (served); a/q1: 7 vs anticipated 8 (full);
    a/q2: no anticipated answer (full). Only the one cheap call and the full ones are paid."""

    def said(qid: str, k: int, rung: int, correct: bool, tokens: int, predicted: str):
        o = outcome("a", qid, k, rung, correct, tokens, sleep=30 if k else 0)
        return Outcome(**{**o.__dict__, "predicted": predicted})

    def nearest(qid: str, answer: str) -> QueryFeatureRow:
        return QueryFeatureRow("a", qid, 1, 0.9, 0.1, answer, 1, 1.0, False, 1, 1.0, 1.0, 0, 10,
                               2, 3)  # fmt: skip

    rows = [said(q, 1, 0, q == "a/q0", 4, "7") for q in ("a/q0", "a/q1", "a/q2")]
    rows += [said(q, 1, 1, False, 20, "7") for q in ("a/q0", "a/q1", "a/q2")]
    rows += [said(q, 0, 2, True, 300, "9") for q in ("a/q0", "a/q1", "a/q2")]
    features = [nearest("a/q0", "7"), nearest("a/q1", "8"), nearest("a/q2", "")]
    table = build_table(rows, features)
    policy = Learned(sleep_min_value=0.0, enriched_threshold=0.0, cached_threshold=1.01,
                     enriched_rung=0, full_rung=2, check_anticipated=True)  # fmt: skip
    result = evaluate(policy, table)
    assert result.accuracy == 1.0 and result.missing == 0
    assert result.test_tokens == pytest.approx((4 + 304 + 304) / 3)
    assert result.escalated_share == pytest.approx(2 / 3)
    both = evaluate(Learned(**{**policy.params(), "check_rung": 1}), table)
    assert both.test_tokens == pytest.approx((24 + 324 + 324) / 3)  # rung 1 agreed on a/q0


def test_answers_agree_as_canonical_strings_whatever_their_format() -> None:
    """Span answers ("26.47%", words) agree when they are the same canonical answer, never
    across scales, and numbers still agree by value."""
    predicted = ["26.47%", "26.47%", "26.47", "fixed-price; cost-plus", "fixed-price; cost-plus",
                 "18", "18.0", ""]  # fmt: skip
    rows = [
        Outcome(**{**outcome("c", f"q{i}", 0, 0, True, 5).__dict__, "predicted": p})
        for i, p in enumerate(predicted)
    ]
    codes = build_table(rows).answers[:, 0, 0]
    same = lambda i, j: bool(codes[i] == codes[j])  # noqa: E731
    assert same(0, 1) and not same(0, 2)
    assert same(3, 4) and not same(3, 0)
    assert same(5, 6)
    assert np.isnan(codes[7])
