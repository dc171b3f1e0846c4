"""The search space: which dimensions are searched, and the seeds the search starts from."""

from __future__ import annotations

from pathlib import Path

import pytest

from policies import REGISTRY, Learned, Policy
from policies.space import Choices
from training.search import check_rungs, finished_trials, policy_of, progress_bar, run_study


def test_the_check_is_searched_only_where_two_rungs_kept_answers() -> None:
    assert check_rungs([0]) == [-1] and check_rungs([]) == [-1]
    assert check_rungs([0, 1]) == [-1, 0, 1]


def test_seeds_include_each_always_sleep_rung_checked_by_every_other_voter() -> None:
    space = Choices([0, 3], [0, 1], [1], checks=check_rungs([0, 1]), anticipated=[False, True])
    seeds = Learned.seeds(space)
    voters = sorted(
        (s["enriched_rung"], s["check_rung"], s["check_anticipated"])
        for s in seeds
        if s["check_rung"] >= 0 or s["check_anticipated"]
    )
    assert voters == [
        (0, -1, True),
        (0, 1, False),
        (0, 1, True),
        (1, -1, True),
        (1, 0, False),
        (1, 0, True),
    ]
    assert all(Learned(**s) for s in seeds)  # every seed is a valid policy


def test_a_dimension_with_one_choice_is_not_a_param_of_the_seeds() -> None:
    rungs_only = Learned.seeds(Choices([0, 3], [0, 1], [1], checks=check_rungs([0, 1])))
    assert all("check_anticipated" not in s for s in rungs_only)
    assert sorted(s["check_rung"] for s in rungs_only if s["check_rung"] >= 0) == [0, 1]
    anticipated_only = Learned.seeds(Choices([0, 3], [0, 1], [1], anticipated=[False, True]))
    assert all("check_rung" not in s for s in anticipated_only)
    assert sum(s["check_anticipated"] for s in anticipated_only) == 2
    unsearched = Learned.seeds(Choices([0, 3], [0, 1], [1]))
    assert all("check_rung" not in s and "check_anticipated" not in s for s in unsearched)
    assert len(unsearched) == 4


@pytest.mark.parametrize("name", sorted(REGISTRY))
def test_one_study_tunes_every_registered_policy_over_its_own_space(
    name: str, tmp_path: Path
) -> None:
    kind = REGISTRY[name]
    space = kind.search_space(Choices([0, 3], [0, 1], [1, 2]))
    seen: list[Policy] = []

    def objective(policy: Policy) -> tuple[float, float]:
        seen.append(policy)
        return 0.5, float(len(seen))

    study = run_study(
        objective,
        storage=str(tmp_path / "journal"),
        name=name,
        trials=6,
        seeds=kind.seeds(Choices([0, 3], [0, 1], [1, 2])),
        space=space,
        policy=kind,
    )
    assert len(study.trials) == 6 and all(isinstance(p, kind) for p in seen)
    assert {policy_of(t, space, kind) for t in study.trials} == set(seen)
    assert set(study.trials[-1].params) <= set(space)  # only the space is searched


def study_of(tmp_path: Path, trials: int, min_accuracy: float | None = None):
    choices = Choices([0, 3], [0, 1], [1])
    return run_study(
        lambda policy: (0.5, 1.0),
        storage=str(tmp_path / "journal"),
        name="s",
        trials=trials,
        seeds=Learned.seeds(choices),
        space=Learned.search_space(choices),
        min_accuracy=min_accuracy,
    )


def test_trials_are_added_to_what_the_study_holds_as_optunas_n_trials(tmp_path: Path) -> None:
    assert len(study_of(tmp_path, 6).trials) == 6
    assert len(study_of(tmp_path, 4).trials) == 10  # resumed: 4 more, not 4 in all


@pytest.mark.parametrize(("min_accuracy", "names"), [(None, ["accuracy", "cost"]), (0.5, ["cost"])])
def test_the_objectives_are_named(
    min_accuracy: float | None, names: list[str], tmp_path: Path
) -> None:
    assert study_of(tmp_path, 2, min_accuracy).metric_names == names


def test_the_progress_bar_shows_only_when_asked(capsys: pytest.CaptureFixture[str]) -> None:
    from types import SimpleNamespace

    for enabled in (False, True):
        with progress_bar(3, enabled=enabled) as tick:
            for accuracy in (0.2, 0.4, 0.3):
                tick(None, SimpleNamespace(user_attrs={"accuracy": accuracy}))
        err = capsys.readouterr().err
        assert ("3/3" in err and "best accuracy 0.400" in err) is enabled


@pytest.mark.parametrize("min_accuracy", [None, 0.5])
def test_workers_share_one_study_and_add_the_trials_asked(
    tmp_path: Path, min_accuracy: float | None
) -> None:
    """Three processes on one journal: 40 trials in all, every number once, each process a
    share; the result is the same kind of study as one process makes."""
    choices = Choices([0, 3], [0, 1], [1])
    study = run_study(
        lambda policy: (0.5, float(policy.enriched_rung)),
        storage=str(tmp_path / "journal"),
        name="shared",
        trials=40,
        seeds=Learned.seeds(choices),
        space=Learned.search_space(choices),
        min_accuracy=min_accuracy,
        workers=3,
    )
    numbers = [t.number for t in study.trials]
    assert len(numbers) == 40 and sorted(numbers) == list(range(40))
    assert all(t.state.is_finished() and "accuracy" in t.user_attrs for t in study.trials)
    assert finished_trials(str(tmp_path / "journal"), "shared") == 40
    assert finished_trials(str(tmp_path / "journal"), "no such study") == 0


def test_a_failing_worker_fails_the_search(tmp_path: Path) -> None:
    import os

    parent = os.getpid()

    def objective(policy: Policy) -> tuple[float, float]:
        if os.getpid() != parent:
            raise ValueError("a worker's bug")
        return 0.5, 1.0

    choices = Choices([0, 3], [0, 1], [1])
    with pytest.raises(RuntimeError, match="1 of 1 search workers failed"):
        run_study(
            objective,
            storage=str(tmp_path / "journal"),
            name="failing",
            trials=4,
            seeds=[],
            space=Learned.search_space(choices),
            workers=2,
        )
