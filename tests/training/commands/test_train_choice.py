"""Which Pareto policy `train` keeps: one that matches full reasoning on every split it saw."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
from outcome_rows import outcome_row

from policies import Learned, Prices
from policies.builtin import NEVER
from training.outcomes import Outcome
from training.replay import build_table
from training.selection import choose


def outcome(ctx: str, k: int, rung: int, correct: bool, tokens: int) -> Outcome:
    return outcome_row(ctx, f"{ctx}/q", k, rung, correct, tokens, dataset="t", queries=1,
                       latency=0.5, sleep=10 if k else 0)  # fmt: skip


def split(cheap_right: bool):
    """Full reasoning at rung 1 is always right; the cheap answer on c' only if asked."""
    rows = []
    for ctx in ("a", "b"):
        rows += [outcome(ctx, 0, 0, False, 5), outcome(ctx, 0, 1, True, 300)]
        rows += [outcome(ctx, 1, 0, cheap_right, 4)]
    return build_table(rows)


CHEAP = {"sleep_min_value": 0.0, "cached_threshold": 1.01, "enriched_threshold": 0.0,
         "enriched_rung": 0, "full_rung": 1}  # fmt: skip
FULL = {"sleep_min_value": NEVER, "full_rung": 1}
OF = lambda trial: Learned(**trial.params)  # noqa: E731
STUDY = SimpleNamespace(
    best_trials=[SimpleNamespace(params=p, values=(1.0, 0.0)) for p in (CHEAP, FULL)]
)


@pytest.mark.parametrize(
    ("train_right", "chosen"), [(True, Learned(**CHEAP)), (False, Learned(**FULL))]
)
def test_a_policy_that_matches_only_on_validation_is_not_kept(
    train_right: bool, chosen: Learned
) -> None:
    val = split(cheap_right=True)  # the cheap policy looks as good as full reasoning here
    assert choose(STUDY, (val,), Prices(), None, OF) == Learned(**CHEAP)
    assert choose(STUDY, (split(train_right), val), Prices(), None, OF) == chosen
