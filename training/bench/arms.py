"""The figures of one `bench replay` arm, from what its client saw: pure, no proxy, no model.

`bench replay` computes them as it runs; `bench pool` recomputes them from the files it
wrote, over several runs at once.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, replace

import numpy as np

from policies import Prices
from training.stats import bootstrap_accuracy

PRICES = Prices()  # the prompt and cached-prompt factors of full_cost


@dataclass(frozen=True)
class Asked:
    """One query as the client saw it come back."""

    context: str
    query: str
    route: str
    rung: str
    correct: bool
    test_tokens: int
    prompt_tokens: int
    latency_s: float
    scores: str = ""  # the X-Sleeptime-Scores header: why the router chose the route
    check: str = ""  # X-Sleeptime-Check: whether two cheap answers agreed
    cached_prompt_tokens: int = 0  # of prompt_tokens, read from the upstream's prefix cache


@dataclass(frozen=True)
class Arm:
    name: str
    queries: int
    contexts: int
    accuracy: float
    accuracy_low: float
    accuracy_high: float
    test_tokens: float  # per query
    prompt_tokens: float  # per query
    sleep_tokens: float  # per context
    cost: float  # amortized per query: t * test + sleep / queries of the context
    # cost plus prompt tokens at t times Prices' prompt and cached-prompt factors: what an
    # API that bills input tokens charges (sleep-time prompt tokens are not counted)
    full_cost: float
    cached_prompt_tokens: float  # per query
    latency_s: float  # median
    routes: dict[str, int]


def summarize(
    name: str, asked: list[Asked], sleep_tokens: dict[str, int], t: float, prices: Prices = PRICES
) -> Arm:
    """Pure: the arm's figures from what the client saw and what sleep time spent."""
    correct = np.array([a.correct for a in asked], dtype=bool)
    contexts = np.array([a.context for a in asked])
    interval = bootstrap_accuracy(correct, contexts)
    per_context = Counter(a.context for a in asked)
    sleep = sum(sleep_tokens.get(c, 0) for c in per_context)
    prices = replace(prices, test_ratio=t)
    test, prompt, hit = (
        np.array([getattr(a, f) for a in asked], dtype=float)
        for f in ("test_tokens", "prompt_tokens", "cached_prompt_tokens")
    )
    shares = np.array([sleep_tokens.get(a.context, 0) / per_context[a.context] for a in asked])
    # Sleep-time prompt tokens are not known to the client: not charged here.
    cost = np.mean(prices.paper_cost(test, shares))
    full_cost = np.mean(prices.full_cost(test, prompt, hit, shares))
    return Arm(
        name=name,
        queries=len(asked),
        contexts=len(per_context),
        accuracy=round(interval.mean, 4),
        accuracy_low=round(interval.low, 4),
        accuracy_high=round(interval.high, 4),
        test_tokens=round(float(np.mean([a.test_tokens for a in asked])), 2),
        prompt_tokens=round(float(np.mean([a.prompt_tokens for a in asked])), 2),
        sleep_tokens=round(sleep / max(len(per_context), 1), 2),
        cost=round(float(cost), 2),
        full_cost=round(float(full_cost), 2),
        cached_prompt_tokens=round(float(np.mean([a.cached_prompt_tokens for a in asked])), 2),
        latency_s=round(float(np.median([a.latency_s for a in asked])), 3),
        routes=dict(Counter(f"{a.route}:{a.rung}" if a.rung else a.route for a in asked)),
    )


def ratios(baseline: Arm, policy: Arm) -> dict[str, float | None]:
    def ratio(a: float, b: float) -> float | None:
        return round(a / b, 3) if b else None

    return {
        "test_token_ratio": ratio(baseline.test_tokens, policy.test_tokens),
        "cost_ratio": ratio(baseline.cost, policy.cost),
        "full_cost_ratio": ratio(baseline.full_cost, policy.full_cost),
        "accuracy_difference": round(policy.accuracy - baseline.accuracy, 4),
    }
