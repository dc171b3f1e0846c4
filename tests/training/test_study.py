"""The search space: which dimensions are searched, and the seeds the search starts from."""

from __future__ import annotations

from policies import Learned
from training.study import baseline_params, check_rungs


def test_the_check_is_searched_only_where_two_rungs_kept_answers() -> None:
    assert check_rungs([0]) == [-1] and check_rungs([]) == [-1]
    assert check_rungs([0, 1]) == [-1, 0, 1]


def test_seeds_include_each_always_sleep_rung_checked_by_another() -> None:
    seeds = baseline_params([0, 3], [0, 1], [1], checks=check_rungs([0, 1]))
    checked = [(s["enriched_rung"], s["check_rung"]) for s in seeds if s["check_rung"] >= 0]
    assert sorted(checked) == [(0, 1), (1, 0)]
    assert all(Learned(**s) for s in seeds)  # every seed is a valid policy
    unsearched = baseline_params([0, 3], [0, 1], [1])
    assert all("check_rung" not in s for s in unsearched) and len(unsearched) == 4
