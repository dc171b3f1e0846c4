"""The cost model, once: what replay charges, what the proxy records, what reports print.

Two costs, both in sleep-time completion-token units (a sleep-time completion token costs 1):

    paper cost  t * test completion tokens + sleep completion tokens / queries of the context
    full cost   also prompt tokens: fresh ones at `prompt`, cached ones at `cached_prompt`,
                test-time ones at t times that, sleep-time ones at 1 times that

The paper (Lin et al. 2025) prices a test-time token at t = 10 sleep-time tokens and counts
completion tokens only; an API bill also charges input tokens, and the notes of a learned
context are input tokens on every cheap call, so whether sleep-time work pays is decided by
the full cost. Dollars come from a per-model price table (`ModelPrice`), with sleep-time
work at its own rate where the upstream offers one (a batch or off-peak discount).

Every function takes numbers or numpy arrays alike, so replay scores a whole table in one
call and the proxy prices one record with the same line of arithmetic.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any

Number = Any  # a float or a numpy array of them


@dataclass(frozen=True)
class Prices:
    """Relative token prices: a sleep-time completion token costs 1."""

    test_ratio: float = 10.0  # the paper's t: a test-time token costs t sleep-time tokens
    prompt: float = 0.25  # per prompt token, relative to a completion token
    cached_prompt: float = 0.125
    # True: `cost` is the full cost, prompt tokens charged (what an API that bills input
    # tokens charges); False: the paper's cost, completion tokens only.
    charge_prompt: bool = False

    def prompt_price(self, prompt: Number, cached: Number) -> Number:
        """Prompt tokens in completion tokens: fresh ones at `prompt`, cached ones (of `prompt`)
        at `cached_prompt`."""
        return self.prompt * (prompt - cached) + self.cached_prompt * cached

    def paper_cost(self, test: Number, sleep: Number = 0.0, queries: Number = 1.0) -> Number:
        """Per query: t * test completion tokens + this query's share of the sleep tokens."""
        return self.test_ratio * test + sleep / queries

    def full_cost(
        self,
        test: Number,
        prompt: Number = 0.0,
        cached: Number = 0.0,
        sleep: Number = 0.0,
        sleep_prompt: Number = 0.0,
        queries: Number = 1.0,
    ) -> Number:
        """Per query, prompt tokens charged on both phases (sleep-time prompts uncached)."""
        test_side = self.test_ratio * (test + self.prompt_price(prompt, cached))
        return test_side + sleep / queries + self.prompt * sleep_prompt / queries

    def cost(
        self,
        test: Number,
        prompt: Number = 0.0,
        cached: Number = 0.0,
        sleep: Number = 0.0,
        sleep_prompt: Number = 0.0,
        queries: Number = 1.0,
    ) -> Number:
        """The cost a search minimizes: the full cost with `charge_prompt`, else the paper's."""
        if self.charge_prompt:
            return self.full_cost(test, prompt, cached, sleep, sleep_prompt, queries)
        return self.paper_cost(test, sleep, queries)


@dataclass(frozen=True)
class ModelPrice:
    """Dollars per million tokens of one model, as providers publish them."""

    input: float
    output: float
    cached_input: float | None = None  # None: no prefix-cache discount
    sleep_discount: float = 1.0  # sleep-time work's price factor (a batch API: 0.5)

    def dollars(
        self, prompt: Number, completion: Number, cached: Number = 0.0, *, sleep: bool = False
    ) -> Number:
        cached_rate = self.input if self.cached_input is None else self.cached_input
        total = self.input * (prompt - cached) + cached_rate * cached + self.output * completion
        return total * (self.sleep_discount if sleep else 1.0) / 1e6

    @classmethod
    def from_dict(cls, given: Mapping[str, Any]) -> ModelPrice:
        """A price as a settings or price file writes it; ValueError says which key is wrong,
        so the file's reader can name the entry too."""
        known = {f.name for f in fields(cls)}
        for key, value in given.items():
            if key not in known:
                raise ValueError(f"unknown key {key!r} (known: {', '.join(sorted(known))})")
            if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
                raise ValueError(f"{key!r} must be a number, at least 0")
        if "input" not in given or "output" not in given:
            raise ValueError("a price needs both 'input' and 'output'")
        return cls(**{key: float(value) for key, value in given.items()})


def price_of(table: dict[str, ModelPrice], model: str) -> ModelPrice | None:
    """A model's price: its exact name, else the longest listed prefix (`gpt-4o` prices
    `gpt-4o-2024-08-06`), else None: an unpriced model is counted in tokens only."""
    if model in table:
        return table[model]
    prefixes = [name for name in table if model.startswith(name)]
    return table[max(prefixes, key=len)] if prefixes else None
