"""Plain features in, plain decisions out: what every policy sees and says.

Features are numbers the router can compute online (from the estimator and the
context's history) and training can compute offline from outcome tables, so a
policy scored by replay behaves the same in the proxy.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Route = Literal["cached", "enriched", "full"]
ROUTES: tuple[Route, ...] = ("cached", "enriched", "full")


@dataclass(frozen=True)
class ContextFeatures:
    predictability: float = 0.5  # estimated share of queries the learned context will serve
    expected_queries: float = 1.0  # queries expected to share this context
    length_tokens: float = 0.0


@dataclass(frozen=True)
class QueryFeatures:
    similarity: float = 0.0  # cosine of the query to its nearest anticipated question
    cached_confidence: float = 0.0  # P(the nearest anticipated answer is right)
    enriched_confidence: float = 0.0  # P(the cheapest rung on c' answers right)
    has_learned_context: bool = False
    words: float = 0.0  # the query's length in words


@dataclass(frozen=True)
class SleepDecision:
    passes: int  # 0: no sleep-time compute for this context


@dataclass(frozen=True)
class QueryDecision:
    route: Route
    rung: int  # test-time rung for "enriched" and "full"; ignored for "cached"
    # "enriched" only: a second answer on c' at this rung must give the same final answer,
    # or the query goes full at `fallback_rung`. On the Multi-Query tables two cheap answers
    # that agree were right as often as full reasoning on them; one cheap answer is not.
    check_rung: int | None = None
    fallback_rung: int = 3
    # "enriched" only: the nearest anticipated answer must state the same number as well, a
    # third voter that costs nothing at test time (it was computed at sleep time).
    check_anticipated: bool = False

    @property
    def checked(self) -> bool:
        return self.route == "enriched" and (self.check_rung is not None or self.check_anticipated)
