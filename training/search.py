"""The one module that imports Optuna: a policy search over replayed outcomes.

Each trial is a `Learned` policy scored by replay on the training contexts.
Multi-objective mode keeps the Pareto front of (accuracy up, cost down);
constrained mode minimizes cost subject to accuracy >= a floor. The built-in
policies enter as the first trials (each is a point of the Learned family), so
the search starts from the baselines it has to beat. Storage is an RDB URL
or a journal file (the default: an append-only log with file locks, about 5x faster
per trial than Optuna's RDB storage on SQLite here): either way a study resumes, and
several workers can share it.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from itertools import product
from pathlib import Path
from typing import Any

from policies import Learned, Policy

NEVER = 20.0  # the top of sleep_min_value's range: sleep only where p x queries >= 20
ALWAYS = 0.0
SEARCH_SPACE_VERSION = 5  # bump when `suggest` changes: a resumed study must not mix spaces
WORD_LIMITS = [6.0, 8.0, 10.0, 12.0, 14.0, 16.0, 20.0, 25.0, 30.0, Learned.enriched_max_words]


@dataclass(frozen=True)
class SearchSpace:
    """The choices a table allows. A dimension with one choice is not searched (a table
    without query lengths, or without answers kept at two rungs on c')."""

    rungs_full: Sequence[int]
    rungs_enriched: Sequence[int]
    budgets: Sequence[int]
    word_limits: Sequence[float] = (Learned.enriched_max_words,)
    checks: Sequence[int] = (Learned.check_rung,)
    anticipated: Sequence[bool] = (Learned.check_anticipated,)


def baseline_params(space: SearchSpace) -> list[dict[str, Any]]:
    """Test-time only at each rung and always-sleep at each (k, rung), as Learned params;
    where answers on c' were kept, also always-sleep with each answer checked by every
    other voter the space allows (another rung, the nearest anticipated answer, both)."""
    base = asdict(
        Learned(
            passes_low=space.budgets[0],
            passes_high=space.budgets[-1],
            enriched_rung=space.rungs_enriched[0],
            full_rung=space.rungs_full[-1],
        )
    )
    unsearched = {
        "enriched_max_words": space.word_limits,
        "check_rung": space.checks,
        "check_anticipated": space.anticipated,
    }
    for name, choices in unsearched.items():
        if len(choices) == 1:  # not a param of the trials
            del base[name]
    out = [base | {"sleep_min_value": NEVER, "full_rung": r} for r in space.rungs_full]
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
        for k in space.budgets
        for r in space.rungs_enriched
    ]
    out += always
    for seed, check, anticipated in product(always, space.checks, space.anticipated):
        if check == seed["enriched_rung"] or (check < 0 and not anticipated):
            continue
        voters = {"check_rung": check} if len(space.checks) > 1 else {}
        if len(space.anticipated) > 1:
            voters["check_anticipated"] = anticipated
        out.append(seed | voters | {"full_rung": space.rungs_full[-1]})
    return out


def check_rungs(answered: Sequence[int]) -> list[int]:
    """Learned.check_rung's choices: none, or a rung on c' whose answers the table kept
    (searched only where two such rungs can check each other)."""
    return [Learned.check_rung, *answered] if len(answered) > 1 else [Learned.check_rung]


def suggest(trial: Any, space: SearchSpace) -> Learned:
    """The order of the calls is part of a seeded study: a new parameter goes last."""
    return Learned(
        sleep_min_value=trial.suggest_float("sleep_min_value", 0.0, NEVER),
        passes_low=trial.suggest_categorical("passes_low", list(space.budgets)),
        passes_high=trial.suggest_categorical("passes_high", list(space.budgets)),
        passes_split=trial.suggest_float("passes_split", 0.0, 1.0),
        cached_threshold=trial.suggest_float("cached_threshold", 0.5, 1.01),
        enriched_threshold=trial.suggest_float("enriched_threshold", 0.0, 1.01),
        enriched_threshold_slope=trial.suggest_float("enriched_threshold_slope", -1.0, 1.0),
        enriched_rung=trial.suggest_categorical("enriched_rung", list(space.rungs_enriched)),
        full_rung=trial.suggest_categorical("full_rung", list(space.rungs_full)),
        enriched_max_words=_choice(trial, "enriched_max_words", space.word_limits),
        check_rung=_choice(trial, "check_rung", space.checks),
        check_anticipated=_choice(trial, "check_anticipated", space.anticipated),
    )


def _choice(trial: Any, name: str, choices: Sequence[Any]) -> Any:
    return choices[0] if len(choices) == 1 else trial.suggest_categorical(name, list(choices))


def run_study(
    objective: Callable[[Policy], tuple[float, float]],
    *,
    storage: str,  # see open_storage
    name: str,
    trials: int,
    seeds: list[dict[str, Any]],
    space: SearchSpace,
    min_accuracy: float | None = None,
    seed: int = 0,
    on_trial: Callable[[int, Policy, tuple[float, float]], None] | None = None,
) -> Any:
    """objective(policy) -> (accuracy, cost). Returns the optuna Study."""
    import optuna

    optuna.logging.set_verbosity(logging.WARNING)
    constrained = min_accuracy is not None

    def constraints(trial: Any) -> Sequence[float]:
        return [min_accuracy - trial.user_attrs["accuracy"]]  # <= 0 is feasible

    sampler = (
        optuna.samplers.TPESampler(seed=seed, constraints_func=constraints, n_startup_trials=30)
        if constrained
        else optuna.samplers.NSGAIISampler(seed=seed, population_size=40)
    )
    study = optuna.create_study(
        storage=open_storage(storage),
        study_name=name,
        load_if_exists=True,
        sampler=sampler,
        directions=["minimize"] if constrained else ["maximize", "minimize"],
    )
    if not study.trials:
        for params in seeds:
            study.enqueue_trial(params, skip_if_exists=True)

    def run(trial: Any) -> Any:
        policy = suggest(trial, space)
        accuracy, cost = objective(policy)
        trial.set_user_attr("accuracy", accuracy)
        trial.set_user_attr("cost", cost)
        if on_trial:
            on_trial(trial.number, policy, (accuracy, cost))
        return cost if constrained else (accuracy, cost)

    finished = sum(t.state.is_finished() for t in study.trials)
    remaining = max(0, trials - finished)
    study.optimize(run, n_trials=remaining, gc_after_trial=False)
    return study


def open_storage(where: str) -> Any:
    """A database URL (sqlite:///..., postgresql://...) or a journal file path."""
    if "://" in where:
        if where.startswith("sqlite:///"):
            Path(where.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
        return where
    from optuna.storages import JournalStorage
    from optuna.storages.journal import JournalFileBackend

    Path(where).parent.mkdir(parents=True, exist_ok=True)
    return JournalStorage(JournalFileBackend(where))


def policy_of(trial: Any) -> Learned:
    return Learned(**trial.params)  # an unsearched dimension keeps its default
