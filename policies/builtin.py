"""Built-in policies: the baselines every learned policy must beat, and the learned one."""

from __future__ import annotations

from dataclasses import dataclass, fields
from itertools import product
from typing import Any

from policies.base import Policy, register
from policies.space import Categorical, Choices, Float, SearchSpace, fixed_params
from policies.types import ContextFeatures, QueryDecision, QueryFeatures, SleepDecision

NEVER = 20.0  # the top of sleep_min_value's range: sleep only where p x queries >= 20
ALWAYS = 0.0


@register
@dataclass(frozen=True)
class TestTimeOnly(Policy):
    """No sleep-time compute; every query gets the full route at one rung."""

    name = "test-time-only"
    __test__ = False  # not a pytest class, despite the name
    rung: int = 3

    @classmethod
    def search_space(cls, choices: Choices) -> SearchSpace:
        return {"rung": Categorical(tuple(choices.rungs_full))}

    def sleep(self, context: ContextFeatures) -> SleepDecision:
        return SleepDecision(0)

    def route(self, context: ContextFeatures, query: QueryFeatures) -> QueryDecision:
        return QueryDecision("full", self.rung)


@register
@dataclass(frozen=True)
class AlwaysSleep(Policy):
    """Every context gets k passes; every query the enriched route at one rung."""

    name = "always-sleep"
    passes: int = 1
    rung: int = 0

    @classmethod
    def search_space(cls, choices: Choices) -> SearchSpace:
        return {
            "passes": Categorical(tuple(choices.budgets)),
            "rung": Categorical(tuple(choices.rungs_enriched)),
        }

    def sleep(self, context: ContextFeatures) -> SleepDecision:
        return SleepDecision(self.passes)

    def route(self, context: ContextFeatures, query: QueryFeatures) -> QueryDecision:
        if not query.has_learned_context:
            return QueryDecision("full", self.rung)
        return QueryDecision("enriched", self.rung)


@register
@dataclass(frozen=True)
class Threshold(Policy):
    """Serve from cache when confident, else enriched when likely right, else full."""

    name = "threshold"
    passes: int = 1
    cached_threshold: float = 0.9
    enriched_threshold: float = 0.5
    enriched_rung: int = 0
    full_rung: int = 3

    @classmethod
    def search_space(cls, choices: Choices) -> SearchSpace:
        return {
            "passes": Categorical(tuple(choices.budgets)),
            "cached_threshold": Float(0.5, 1.01),
            "enriched_threshold": Float(0.0, 1.01),
            "enriched_rung": Categorical(tuple(choices.rungs_enriched)),
            "full_rung": Categorical(tuple(choices.rungs_full)),
        }

    def sleep(self, context: ContextFeatures) -> SleepDecision:
        return SleepDecision(self.passes)

    def route(self, context: ContextFeatures, query: QueryFeatures) -> QueryDecision:
        if not query.has_learned_context:
            return QueryDecision("full", self.full_rung)
        if query.cached_confidence >= self.cached_threshold:
            return QueryDecision("cached", 0)
        if query.enriched_confidence >= self.enriched_threshold:
            return QueryDecision("enriched", self.enriched_rung)
        return QueryDecision("full", self.full_rung)


@register
@dataclass(frozen=True)
class Learned(Policy):
    """Parametric: sleep only where predicted gain x expected queries pays for it,
    with k growing in the predicted gain; route on thresholds that may depend on
    the context's predictability."""

    name = "learned"
    sleep_min_value: float = 0.5  # sleep when predictability * expected_queries >= this
    passes_low: int = 1
    passes_high: int = 3
    passes_split: float = 0.7  # predictability at which k switches to passes_high
    cached_threshold: float = 0.9
    enriched_threshold: float = 0.5
    enriched_threshold_slope: float = 0.0  # threshold moves with (predictability - 0.5)
    enriched_rung: int = 0
    full_rung: int = 3
    # Longer queries go to full reasoning: on Multi-Query GSM8K the final questions are
    # long, and only full reasoning answers them; short sub-questions do as well on c'.
    enriched_max_words: float = 1e9
    # Voters that must agree with the enriched answer before it is served, or the query goes
    # full: a second answer on c' at this rung (below 0: none), and the nearest anticipated
    # answer. With neither, the enriched answer is served as it is.
    check_rung: int = -1
    check_anticipated: bool = False

    @classmethod
    def search_space(cls, choices: Choices) -> SearchSpace:
        """Search space version 5 (training.search.SEARCH_SPACE_VERSION); a new parameter
        goes last, or a seeded study changes."""
        return {
            "sleep_min_value": Float(0.0, NEVER),
            "passes_low": Categorical(tuple(choices.budgets)),
            "passes_high": Categorical(tuple(choices.budgets)),
            "passes_split": Float(0.0, 1.0),
            "cached_threshold": Float(0.5, 1.01),
            "enriched_threshold": Float(0.0, 1.01),
            "enriched_threshold_slope": Float(-1.0, 1.0),
            "enriched_rung": Categorical(tuple(choices.rungs_enriched)),
            "full_rung": Categorical(tuple(choices.rungs_full)),
            "enriched_max_words": Categorical(tuple(choices.word_limits), optional=True),
            "check_rung": Categorical(tuple(choices.checks), optional=True),
            "check_anticipated": Categorical(tuple(choices.anticipated), optional=True),
        }

    @classmethod
    def seeds(cls, choices: Choices) -> list[dict[str, Any]]:
        return learned_seeds(choices)

    def sleep(self, context: ContextFeatures) -> SleepDecision:
        if context.predictability * context.expected_queries < self.sleep_min_value:
            return SleepDecision(0)
        high = context.predictability >= self.passes_split
        return SleepDecision(self.passes_high if high else self.passes_low)

    def route(self, context: ContextFeatures, query: QueryFeatures) -> QueryDecision:
        if not query.has_learned_context:
            return QueryDecision("full", self.full_rung)
        if query.cached_confidence >= self.cached_threshold:
            return QueryDecision("cached", 0)
        shift = self.enriched_threshold_slope * (context.predictability - 0.5)
        short = query.words < self.enriched_max_words
        if short and query.enriched_confidence >= min(max(self.enriched_threshold - shift, 0), 1):
            # A second answer at the served answer's own rung is the same answer: no check.
            check = self.check_rung if self.check_rung not in (-1, self.enriched_rung) else None
            if check is None and not self.check_anticipated:
                return QueryDecision("enriched", self.enriched_rung)
            return QueryDecision(
                "enriched", self.enriched_rung, check, self.full_rung, self.check_anticipated
            )
        return QueryDecision("full", self.full_rung)


def builtin_baselines(rungs: range, passes: tuple[int, ...]) -> list[Policy]:
    """Test-time only at each rung and always-sleep at each (k, rung)."""
    out: list[Policy] = [TestTimeOnly(r) for r in rungs]
    out += [AlwaysSleep(k, r) for k in passes for r in rungs]
    return out


def learned_seeds(choices: Choices) -> list[dict[str, Any]]:
    """Test-time only at each rung and always-sleep at each (k, rung), as Learned params;
    where answers on c' were kept, also always-sleep with each answer checked by every
    other voter the choices allow (another rung, the nearest anticipated answer, both)."""
    base = {
        f.name: getattr(
            Learned(
                passes_low=choices.budgets[0],
                passes_high=choices.budgets[-1],
                enriched_rung=choices.rungs_enriched[0],
                full_rung=choices.rungs_full[-1],
            ),
            f.name,
        )
        for f in fields(Learned)
    }
    for name in fixed_params(Learned.search_space(choices)):  # not a param of the trials
        del base[name]
    out = [base | {"sleep_min_value": NEVER, "full_rung": r} for r in choices.rungs_full]
    always = [
        base
        | {
            "sleep_min_value": ALWAYS,
            "passes_low": k,
            "passes_high": k,
            "cached_threshold": 1.01,
            "enriched_threshold": 0.0,
            "enriched_threshold_slope": 0.0,
            "enriched_rung": r,
        }
        for k in choices.budgets
        for r in choices.rungs_enriched
    ]
    out += always
    for seed, check, anticipated in product(always, choices.checks, choices.anticipated):
        if check == seed["enriched_rung"] or (check < 0 and not anticipated):
            continue
        voters = {"check_rung": check} if len(choices.checks) > 1 else {}
        if len(choices.anticipated) > 1:
            voters["check_anticipated"] = anticipated
        out.append(seed | voters | {"full_rung": choices.rungs_full[-1]})
    return out
