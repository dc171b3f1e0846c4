"""A policy's search space as plain data, so one study function tunes any registered policy.

As optuna's `study.ask(search_space)`: each policy class says which of its parameters are
searched and over what (`Policy.search_space(choices)`), in the order the sampler asks for
them (the order is part of a seeded study). What a table allows (the rungs it ran on c and
c', the sleep budgets it collected, ...) arrives as `Choices`, so a space never offers an
action the table cannot score.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Float:
    low: float
    high: float


@dataclass(frozen=True)
class Categorical:
    choices: tuple[Any, ...]
    # True: with one choice the parameter is not searched, only set (a dimension the table
    # cannot tell apart); False: asked for even then, as the space always did.
    optional: bool = False

    @property
    def fixed(self) -> bool:
        return self.optional and len(self.choices) == 1


Dimension = Float | Categorical
SearchSpace = dict[str, Dimension]


@dataclass(frozen=True)
class Choices:
    """The choices a table allows. A dimension with one choice is not searched (a table
    without query lengths, or without answers kept at two rungs on c')."""

    rungs_full: Sequence[int]
    rungs_enriched: Sequence[int]
    budgets: Sequence[int]
    word_limits: Sequence[float] = (1e9,)
    checks: Sequence[int] = (-1,)
    anticipated: Sequence[bool] = (False,)


def fixed_params(space: SearchSpace) -> dict[str, Any]:
    """The parameters a space sets without searching them."""
    return {
        name: dim.choices[0]
        for name, dim in space.items()
        if isinstance(dim, Categorical) and dim.fixed
    }
