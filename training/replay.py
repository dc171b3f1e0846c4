"""Replay: score any policy on stored outcomes without calling an LLM.

An outcome table holds every action's result for every query (full information),
so a policy's decisions just index into it. The table is arranged once into
dense arrays (query x rung for the full route, query x k x rung for the enriched
route, query x k for the cached route); scoring a policy is then a handful of
numpy gathers, fast enough for thousands of Optuna trials. Given a price table per
model, each action is also priced in dollars (`query_dollars`), at the price of the model
that answered it and, for the sleep-time work, of the model that slept.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from policies import ContextFeatures, Policy, Prices, QueryFeatures
from training.outcome_features import QueryFeatureRow
from training.outcomes import Outcome
from training.price_table import PriceTable, answer_dollars, sleep_dollars

ROUTE_CODES = {"cached": 0, "enriched": 1, "full": 2}
DEFAULT_PRICES = Prices()


@dataclass
class ReplayTable:
    """Dense arrays over Q queries, K sleep budgets (index 0 = none), R rungs. NaN = not run."""

    query_ids: np.ndarray  # (Q,)
    context_index: np.ndarray  # (Q,) index into contexts
    contexts: np.ndarray  # (C,)
    budgets: np.ndarray  # (K,) sleep passes; budgets[0] == 0
    correct: np.ndarray  # (Q, K, R) enriched (k > 0) or full (k = 0)
    completion: np.ndarray  # (Q, K, R) test completion tokens
    prompt: np.ndarray  # (Q, K, R)
    cached_prompt: np.ndarray  # (Q, K, R)
    latency: np.ndarray  # (Q, K, R) seconds
    answers: np.ndarray  # (Q, K, R) the extracted final answer as `_code`s; NaN: none or not run
    cached_correct: np.ndarray  # (Q, K) the nearest anticipated answer is right
    cached_answers: np.ndarray  # (Q, K) that answer's `_code`; NaN: none
    cached_confidence: np.ndarray  # (Q, K) estimator's P(cached right), 0 if none
    enriched_confidence: np.ndarray  # (Q, K) estimator's P(enriched right at low rung)
    sleep_tokens: np.ndarray  # (C, K) sleep completion tokens per context
    sleep_prompt: np.ndarray  # (C, K)
    predictability: np.ndarray  # (C,) context-level estimate
    queries_per_context: np.ndarray  # (C,)
    query_words: np.ndarray  # (Q,) 0 where the features do not say
    test_dollars: np.ndarray | None = None  # (Q, K, R); None: built without a price table
    sleep_dollars: np.ndarray | None = None  # (C, K) a context's whole sleep-time bill

    @property
    def rungs(self) -> int:
        return self.correct.shape[2]

    def subset(self, context_mask: np.ndarray) -> ReplayTable:
        """Only the queries of the chosen contexts (for train / validation / test splits)."""
        keep = context_mask[self.context_index]
        remap = np.cumsum(context_mask) - 1
        fields = vars(self)
        per_query = (
            "query_ids",
            "correct",
            "completion",
            "prompt",
            "cached_prompt",
            "latency",
            "answers",
            "cached_correct",
            "cached_answers",
            "cached_confidence",
            "enriched_confidence",
            "query_words",
            "test_dollars",
        )
        per_context = (
            "contexts",
            "sleep_tokens",
            "sleep_prompt",
            "predictability",
            "queries_per_context",
            "sleep_dollars",
        )
        out = {k: _rows(fields[k], keep) for k in per_query}
        out |= {k: _rows(fields[k], context_mask) for k in per_context}
        out["context_index"] = remap[self.context_index[keep]]
        out["budgets"] = self.budgets
        return ReplayTable(**out)


def _rows(values: np.ndarray | None, mask: np.ndarray) -> np.ndarray | None:
    return None if values is None else values[mask]


def build_table(
    outcomes: list[Outcome],
    features: list[QueryFeatureRow] = (),
    *,
    cached_confidence: dict[tuple[str, int], float] | None = None,
    enriched_confidence: dict[tuple[str, int], float] | None = None,
    predictability: dict[str, float] | None = None,
    prices: PriceTable | None = None,
    model: str = "",
) -> ReplayTable:
    """`prices` (with `model`, the run's model, for rows that name none) prices every action
    in dollars too; without it the table holds tokens only."""
    query_ids = np.array(sorted({o.query_id for o in outcomes}))
    contexts = np.array(sorted({o.context_id for o in outcomes}))
    budgets = np.array(sorted({o.sleep_passes for o in outcomes} | {0}))
    rungs = max(o.rung for o in outcomes) + 1
    qi = {q: i for i, q in enumerate(query_ids)}
    ci = {c: i for i, c in enumerate(contexts)}
    ki = {int(k): i for i, k in enumerate(budgets)}
    shape = (len(query_ids), len(budgets), rungs)
    code = _Codes()
    arrays = {
        n: np.full(shape, np.nan)
        for n in ("correct", "completion", "prompt", "cached_prompt", "latency", "answers")
    }
    context_index = np.zeros(len(query_ids), dtype=int)
    sleep = np.zeros((len(contexts), len(budgets)))
    sleep_prompt = np.zeros((len(contexts), len(budgets)))
    per_context_queries = np.ones(len(contexts))
    dollars = np.full(shape, np.nan) if prices else None
    sleep_bill = np.zeros((len(contexts), len(budgets))) if prices else None
    for o in outcomes:
        q, k = qi[o.query_id], ki[o.sleep_passes]
        context_index[q] = ci[o.context_id]
        at = (q, k, o.rung)
        arrays["correct"][at] = o.correct
        arrays["completion"][at] = o.test_completion_tokens
        arrays["prompt"][at] = o.test_prompt_tokens
        arrays["cached_prompt"][at] = o.test_cached_prompt_tokens
        arrays["latency"][at] = o.test_latency_s
        arrays["answers"][at] = code(o.predicted)
        sleep[ci[o.context_id], k] = o.sleep_completion_tokens
        sleep_prompt[ci[o.context_id], k] = o.sleep_prompt_tokens
        per_context_queries[ci[o.context_id]] = o.queries_in_context
        if prices:
            dollars[at] = answer_dollars(o, prices, model)
            sleep_bill[ci[o.context_id], k] = sleep_dollars(o, prices, model)
    cached = np.zeros((len(query_ids), len(budgets)))
    cached_answers = np.full((len(query_ids), len(budgets)), np.nan)
    words = np.zeros(len(query_ids))
    for f in features:
        if f.query_id in qi and f.sleep_passes in ki:
            cached[qi[f.query_id], ki[f.sleep_passes]] = f.cached_correct
            cached_answers[qi[f.query_id], ki[f.sleep_passes]] = code(f.cached_answer)
            words[qi[f.query_id]] = f.query_words
    return ReplayTable(
        query_ids=query_ids,
        context_index=context_index,
        contexts=contexts,
        budgets=budgets,
        **arrays,
        cached_correct=cached,
        cached_answers=cached_answers,
        cached_confidence=_lookup(cached_confidence, query_ids, budgets),
        enriched_confidence=_lookup(enriched_confidence, query_ids, budgets),
        sleep_tokens=sleep,
        sleep_prompt=sleep_prompt,
        predictability=np.array([(predictability or {}).get(c, 0.5) for c in contexts]),
        queries_per_context=per_context_queries,
        query_words=words,
        test_dollars=dollars,
        sleep_dollars=sleep_bill,
    )


class _Codes:
    """Answers as floats that `_same` compares as the answers' formats do: a canonical number
    is its value (so "18" and "18.0" agree, as they always did); any other canonical answer
    ("26.47%", "fixed-price; cost-plus") gets its own value far below any real number,
    spaced beyond `_same`'s tolerance, so equal strings agree and different ones never do."""

    BASE, STEP = -(2.0**60), 2.0**40

    def __init__(self) -> None:
        self._seen: dict[str, float] = {}

    def __call__(self, text: str) -> float:
        if not text:
            return np.nan
        try:
            return float(text)
        except ValueError:
            return self._seen.setdefault(text, self.BASE - self.STEP * len(self._seen))


def _lookup(
    values: dict[tuple[str, int], float] | None, query_ids: np.ndarray, budgets: np.ndarray
) -> np.ndarray:
    out = np.zeros((len(query_ids), len(budgets)))
    for (query_id, k), value in (values or {}).items():
        i = np.searchsorted(query_ids, query_id)
        j = np.searchsorted(budgets, k)
        if i < len(query_ids) and query_ids[i] == query_id and j < len(budgets) and budgets[j] == k:
            out[i, j] = value
    return out


@dataclass(frozen=True)
class ReplayResult:
    accuracy: float
    cost: float  # per query: t * test tokens + sleep tokens / queries of the context
    full_cost: float  # also charges prompt tokens (cached ones at a discount)
    test_tokens: float  # mean test-time completion tokens per query
    sleep_tokens: float  # mean amortized sleep tokens per query
    cached_share: float
    enriched_share: float  # answered on c' (a checked answer only where the check agreed)
    escalated_share: float  # checked on c', disagreed, answered full
    cached_wrong_rate: float  # wrong answers among cached ones
    latency_s: float  # mean test-time latency per query (cached: 0)
    missing: int  # decisions that pointed at an action never collected


@dataclass(frozen=True)
class Decisions:
    """A policy's decisions for every query of a table, as arrays."""

    k: np.ndarray  # sleep budget index whose learned context the query uses
    paid: np.ndarray  # (C,) sleep budget index each context paid for (k, or the probe pass)
    route: np.ndarray  # ROUTE_CODES
    rung: np.ndarray
    check: np.ndarray  # the check rung of a checked enriched answer; -1: none
    fallback: np.ndarray  # the full rung a failed check falls back to
    anticipated: np.ndarray  # bool: the nearest anticipated answer must agree as well


def decisions(policy: Policy, table: ReplayTable) -> Decisions:
    passes = np.array(
        [
            policy.sleep_passes(ContextFeatures(float(p), float(n)))
            for p, n in zip(table.predictability, table.queries_per_context, strict=True)
        ]
    ).reshape(-1, 2)
    k_of_context = np.array([_nearest_budget(table.budgets, p) for p in passes[:, 0]])
    paid = np.array([_nearest_budget(table.budgets, p) for p in passes[:, 1]])
    k = k_of_context[table.context_index]
    q = np.arange(len(table.query_ids))
    has = k > 0
    route, rung, check, fallback = (np.empty(len(q), dtype=int) for _ in range(4))
    anticipated = np.zeros(len(q), dtype=bool)
    for i in q:
        decision = policy.route(
            ContextFeatures(
                float(table.predictability[table.context_index[i]]),
                float(table.queries_per_context[table.context_index[i]]),
            ),
            QueryFeatures(
                0.0,
                float(table.cached_confidence[i, k[i]]),
                float(table.enriched_confidence[i, k[i]]),
                bool(has[i]),
                float(table.query_words[i]),
            ),
        )
        route[i], rung[i] = ROUTE_CODES[decision.route], decision.rung
        check[i] = -1 if decision.check_rung is None else decision.check_rung
        fallback[i] = decision.fallback_rung
        anticipated[i] = decision.check_anticipated
    return Decisions(k, paid, route, rung, check, fallback, anticipated)


def _nearest_budget(budgets: np.ndarray, passes: int) -> int:
    """Index of the largest collected budget not above the asked one."""
    return int(np.searchsorted(budgets, passes, side="right") - 1)


def evaluate(policy: Policy, table: ReplayTable, prices: Prices = DEFAULT_PRICES) -> ReplayResult:
    return score(table, decisions(policy, table), prices)


@dataclass(frozen=True)
class QueryOutcomes:
    """What each query got under a policy's decisions, summed over every call it made."""

    cached: np.ndarray  # bool
    enriched: np.ndarray  # bool: answered on c' (checked or not)
    escalate: np.ndarray  # bool: a checked answer on c' that a voter disagreed with
    correct: np.ndarray  # NaN: the action was never collected
    completion: np.ndarray
    prompt: np.ndarray
    hit: np.ndarray  # cached prompt tokens
    latency: np.ndarray
    amortized: np.ndarray  # the query's share of its context's sleep completion tokens
    amortized_prompt: np.ndarray
    dollars: np.ndarray | None = None  # every call's price plus the share of the sleep bill


def outcomes(table: ReplayTable, d: Decisions) -> QueryOutcomes:
    q, k = np.arange(len(d.k)), d.k
    top = table.rungs - 1
    rung = np.clip(d.rung, 0, top)
    cached = d.route == ROUTE_CODES["cached"]
    k_used = np.where(d.route == ROUTE_CODES["full"], 0, k)
    pick = (q, k_used, rung)
    # A checked enriched answer: both answers on c' are paid for (asked side by side); when
    # any voter disagrees (the nearest anticipated answer is one that costs nothing), so is
    # the full answer that replaces them.
    enriched = d.route == ROUTE_CODES["enriched"]
    two = enriched & (d.check >= 0)
    checked = two | (enriched & d.anticipated)
    second = (q, k, np.clip(d.check, 0, top))
    full = (q, np.zeros_like(k), np.clip(d.fallback, 0, top))
    served = table.answers[pick]
    agree = ~np.isnan(served)
    agree &= ~two | _same(served, table.answers[second])
    agree &= ~d.anticipated | _same(served, table.cached_answers[q, k])
    escalate = checked & ~agree
    correct = np.where(cached, table.cached_correct[q, k], table.correct[pick])
    correct = np.where(escalate, table.correct[full], correct)

    def paid(spent: np.ndarray) -> np.ndarray:
        """Summed over every call the query made (a cached answer makes none)."""
        total = np.where(cached, 0.0, spent[pick]) + np.where(two, spent[second], 0.0)
        return total + np.where(escalate, spent[full], 0.0)

    latency = np.where(cached, 0.0, table.latency[pick])
    latency = np.where(two, np.maximum(latency, table.latency[second]), latency)
    latency = latency + np.where(escalate, table.latency[full], 0.0)
    context_k = d.paid
    sleep = table.sleep_tokens[np.arange(len(context_k)), context_k]
    sleep_prompt = table.sleep_prompt[np.arange(len(context_k)), context_k]
    n = table.queries_per_context
    return QueryOutcomes(
        cached=cached,
        enriched=enriched,
        escalate=escalate,
        correct=correct,
        completion=paid(table.completion),
        prompt=paid(table.prompt),
        hit=paid(table.cached_prompt),
        latency=latency,
        amortized=(sleep / n)[table.context_index],
        amortized_prompt=(sleep_prompt / n)[table.context_index],
        dollars=_dollars(table, context_k, paid),
    )


def _dollars(
    table: ReplayTable, context_k: np.ndarray, paid: Callable[[np.ndarray], np.ndarray]
) -> np.ndarray | None:
    if table.test_dollars is None or table.sleep_dollars is None:
        return None
    bill = table.sleep_dollars[np.arange(len(context_k)), context_k]
    return paid(table.test_dollars) + (bill / table.queries_per_context)[table.context_index]


def query_dollars(table: ReplayTable, d: Decisions) -> np.ndarray | None:
    """Dollars each query costs under the decisions (NaN: an action never collected); None
    when the table was built without a price table."""
    return outcomes(table, d).dollars


def dollar_cost(policy: Policy, table: ReplayTable) -> float | None:
    """Mean dollars per query of a policy, beside `evaluate`'s relative costs."""
    dollars = query_dollars(table, decisions(policy, table))
    return None if dollars is None else float(np.nan_to_num(dollars).mean())


def score(table: ReplayTable, d: Decisions, prices: Prices = DEFAULT_PRICES) -> ReplayResult:
    o = outcomes(table, d)
    missing = int(np.isnan(o.correct).sum())
    correct, completion, prompt, hit, latency = (
        np.nan_to_num(a) for a in (o.correct, o.completion, o.prompt, o.hit, o.latency)
    )
    amortized, amortized_prompt = o.amortized, o.amortized_prompt
    cost = prices.cost(completion, prompt, hit, amortized, amortized_prompt)
    full_cost = prices.full_cost(completion, prompt, hit, amortized, amortized_prompt)
    cached = o.cached
    n_cached = max(int(cached.sum()), 1)
    return ReplayResult(
        accuracy=float(correct.mean()),
        cost=float(cost.mean()),
        full_cost=float(full_cost.mean()),
        test_tokens=float(completion.mean()),
        sleep_tokens=float(amortized.mean()),
        cached_share=float(cached.mean()),
        enriched_share=float((o.enriched & ~o.escalate).mean()),
        escalated_share=float(o.escalate.mean()),
        cached_wrong_rate=float(((1 - correct) * cached).sum() / n_cached),
        latency_s=float(latency.mean()),
        missing=missing,
    )


def _same(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.isclose(a, b, rtol=1e-9, atol=1e-9)  # False where either is NaN
