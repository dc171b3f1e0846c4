"""The one module that imports Optuna: a policy search over replayed outcomes.

Each trial is a policy of one registered class (`Learned` by default), its parameters
drawn from the class's own search space (`Policy.search_space`, plain data), scored by
replay on the training contexts.
Multi-objective mode keeps the Pareto front of (accuracy up, cost down);
constrained mode minimizes cost subject to accuracy >= a floor. The class's seeds enter
as the first trials (for Learned, every built-in as a point of its family), so the
search starts from the baselines it has to beat. Storage is an RDB URL
or a journal file (the default: an append-only log with file locks, about 5x faster
per trial than Optuna's RDB storage on SQLite here): either way a study resumes, and
several workers can share it. As with Optuna's `n_trials`, `trials` are added to what
the study holds; its objectives are named, so `optuna-dashboard` shows "accuracy" and
"cost", not "0" and "1".
"""

from __future__ import annotations

import contextlib
import logging
import sys
import warnings
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

from policies import Learned, Policy
from policies.space import Float, SearchSpace, fixed_params

SEARCH_SPACE_VERSION = 5  # bump when a space changes: a resumed study must not mix spaces
PARETO_OBJECTIVES = ["accuracy", "cost"]  # maximize, minimize
CONSTRAINED_OBJECTIVES = ["cost"]  # minimize, subject to accuracy >= a floor
WORD_LIMITS = [6.0, 8.0, 10.0, 12.0, 14.0, 16.0, 20.0, 25.0, 30.0, Learned.enriched_max_words]


def check_rungs(answered: Sequence[int]) -> list[int]:
    """Learned.check_rung's choices: none, or a rung on c' whose answers the table kept
    (searched only where two such rungs can check each other)."""
    return [Learned.check_rung, *answered] if len(answered) > 1 else [Learned.check_rung]


def suggest(trial: Any, space: SearchSpace) -> dict[str, Any]:
    """The space's parameters, asked in its order; fixed ones set, not asked."""
    params = fixed_params(space)
    for name, dim in space.items():
        if name in params:
            continue
        if isinstance(dim, Float):
            params[name] = trial.suggest_float(name, dim.low, dim.high)
        else:
            params[name] = trial.suggest_categorical(name, list(dim.choices))
    return params


def run_study(
    objective: Callable[[Policy], tuple[float, float]],
    *,
    storage: str,  # see open_storage
    name: str,
    trials: int,
    seeds: list[dict[str, Any]],
    space: SearchSpace,
    policy: type[Policy] = Learned,
    min_accuracy: float | None = None,
    seed: int = 0,
    progress: bool = False,
    workers: int = 1,
) -> Any:
    """objective(policy) -> (accuracy, cost); adds `trials` trials to the study (the seeds
    first, if it is new). Returns the optuna Study. `progress`: a bar on stderr.

    `workers` > 1: that many processes share the study through its storage, each adding
    its share of the trials with its own sampler seed (`seed + i`); the others are forked
    from this one, so they inherit the objective. The bar shows this process's trials."""
    import optuna

    optuna.logging.set_verbosity(logging.WARNING)
    constrained = min_accuracy is not None
    study = _open_study(storage, name, seed, min_accuracy)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        study.set_metric_names(CONSTRAINED_OBJECTIVES if constrained else PARETO_OBJECTIVES)
    if not study.trials:
        for params in seeds:
            study.enqueue_trial(params, skip_if_exists=True)

    def run(trial: Any) -> Any:
        chosen = policy(**suggest(trial, space))
        accuracy, cost = objective(chosen)
        trial.set_user_attr("accuracy", accuracy)
        trial.set_user_attr("cost", cost)
        return cost if constrained else (accuracy, cost)

    shares = [trials // workers + (i < trials % workers) for i in range(max(1, workers))]

    def work(index: int) -> None:
        mine = _open_study(storage, name, seed + index, min_accuracy)
        mine.optimize(run, n_trials=shares[index], gc_after_trial=False)

    with _forked(work, len(shares) - 1), progress_bar(shares[0], enabled=progress) as tick:
        study.optimize(run, n_trials=shares[0], gc_after_trial=False, callbacks=[tick])
    return optuna.load_study(study_name=name, storage=open_storage(storage))


def finished_trials(storage: str, name: str) -> int:
    """How many finished trials a study holds; 0 when there is no such study yet."""
    import optuna

    optuna.logging.set_verbosity(logging.WARNING)
    try:
        study = optuna.load_study(study_name=name, storage=open_storage(storage))
    except KeyError:  # no such study
        return 0
    return sum(t.state.is_finished() for t in study.trials)


def _open_study(storage: str, name: str, seed: int, min_accuracy: float | None) -> Any:
    """The study with this process's sampler (a worker's seed differs from the others')."""
    import optuna

    def constraints(trial: Any) -> Sequence[float]:
        return [min_accuracy - trial.user_attrs["accuracy"]]  # <= 0 is feasible

    sampler = (
        optuna.samplers.TPESampler(seed=seed, constraints_func=constraints, n_startup_trials=30)
        if min_accuracy is not None
        else optuna.samplers.NSGAIISampler(seed=seed, population_size=40)
    )
    return optuna.create_study(
        storage=open_storage(storage),
        study_name=name,
        load_if_exists=True,
        sampler=sampler,
        directions=["maximize", "minimize"] if min_accuracy is None else ["minimize"],
    )


@contextlib.contextmanager
def _forked(work: Callable[[int], None], count: int) -> Iterator[None]:
    """`count` forked processes run work(1..count) while the block runs work(0); a worker
    that fails fails the search, after the others have finished."""
    if count == 0:
        yield
        return
    import multiprocessing

    context = multiprocessing.get_context("fork")
    processes = [context.Process(target=work, args=(i,), daemon=True) for i in range(1, count + 1)]
    for process in processes:
        process.start()
    try:
        yield
    finally:
        for process in processes:
            process.join()
    failed = [p.exitcode for p in processes if p.exitcode != 0]
    if failed:
        raise RuntimeError(f"{len(failed)} of {count} search workers failed (exit {failed})")


@contextlib.contextmanager
def progress_bar(total: int, *, enabled: bool) -> Iterator[Callable[[Any, Any], None]]:
    """An Optuna callback that advances a tqdm bar on stderr, showing the best accuracy so
    far; a no-op when disabled (a pipe, `--json`)."""
    from tqdm import tqdm

    best = -1.0
    with tqdm(total=total, unit="trial", file=sys.stderr, disable=not enabled) as bar:

        def tick(study: Any, trial: Any) -> None:
            nonlocal best
            accuracy = trial.user_attrs.get("accuracy", best)
            if accuracy > best:
                best = accuracy
                bar.set_postfix_str(f"best accuracy {best:.3f}", refresh=False)
            bar.update(1)

        yield tick


def open_storage(where: str) -> Any:
    """A database URL (sqlite:///..., postgresql://...) or a journal file path. PostgreSQL
    goes through psycopg 3 (the driver the store uses), not SQLAlchemy's default psycopg2."""
    if "://" in where:
        if where.startswith("sqlite:///"):
            Path(where.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
        for scheme in ("postgresql://", "postgres://"):
            if where.startswith(scheme):
                return "postgresql+psycopg://" + where.removeprefix(scheme)
        return where
    from optuna.storages import JournalStorage
    from optuna.storages.journal import JournalFileBackend

    Path(where).parent.mkdir(parents=True, exist_ok=True)
    return JournalStorage(JournalFileBackend(where))


def policy_of(trial: Any, space: SearchSpace, policy: type[Policy] = Learned) -> Policy:
    return policy(**(fixed_params(space) | trial.params))
