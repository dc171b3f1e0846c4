"""`sleeptime train`: find the cheapest policy for the accuracy asked, by replay + Optuna.

Contexts are split into train / validation / test. Trials are scored by replay
on train; the policy is chosen on validation (the Pareto point that matches the
best test-time-only accuracy at the lowest cost, or the constrained optimum);
the figures reported are on test, beside every built-in policy. `--trials N` adds N
trials to the study (Optuna's n_trials); a resumed study continues its MLflow run
(training/train_tracking.py).
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from policies import REGISTRY, Learned, Policy, Prices, save
from policies.space import Choices, fixed_params
from router.predictability import estimators_for, save_models
from router.settings import load_settings
from training.outcomes import CONTEXTS, Outcome, read_jsonl
from training.replay import ReplayTable, evaluate
from training.search import (
    SEARCH_SPACE_VERSION,
    WORD_LIMITS,
    check_rungs,
    finished_trials,
    policy_of,
    run_study,
)
from training.selection import choose, held_out_summary, search_warnings
from training.tables import (
    fit_estimators,
    load_rows,
    low_rung,
    replay_table,
    split_masks,
)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="sleeptime train", description=__doc__)
    parser.add_argument("outcomes", nargs="+", type=Path, help="folders written by collect")
    parser.add_argument(
        "--trials",
        type=int,
        default=1000,
        help="trials to add to the study, as Optuna's n_trials (a resumed study keeps its "
        "trials; the total is printed); default 1000",
    )
    parser.add_argument(
        "--policy",
        choices=sorted(REGISTRY),
        default=Learned.name,
        help="the registered policy class to tune over its own search space (default learned)",
    )
    parser.add_argument(
        "--min-accuracy",
        type=float,
        default=None,
        help="constrained mode: minimize cost subject to accuracy >= this",
    )
    parser.add_argument("--t", type=float, default=None, help="test/sleep token price ratio")
    parser.add_argument(
        "--charge-prompt",
        action="store_true",
        help="the cost searched and reported charges prompt tokens too (cached ones at a "
        "discount), as an API that bills input tokens does; default: the paper's cost",
    )
    parser.add_argument(
        "--storage",
        default=None,
        help="journal file, or an RDB URL (sqlite:///..., postgresql://...); default: the "
        "optuna_storage setting (OPTUNA_STORAGE, else mlruns/optuna.journal)",
    )
    parser.add_argument(
        "--workers",
        type=int,
        default=1,
        help="processes sharing the study through its storage, each adding its share of "
        "--trials (default 1); a journal file or a database both take several",
    )
    parser.add_argument("--study", default=None, help="study name (default: from the inputs)")
    parser.add_argument(
        "--seed",
        type=int,
        default=0,
        help="seeds the train / validation / test split, the estimators' folds and the "
        "sampler; another seed is another study (default 0)",
    )
    parser.add_argument(
        "--out",
        type=Path,
        default=Path("policies/trained/policy.json"),
        help="the policy file; its estimators (NAME.estimators.pkl) and Pareto plot "
        "(NAME.pareto.png) are written beside it",
    )
    parser.add_argument(
        "--mlflow-trials",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="a child run per trial on the Pareto front (every trial is in the parent's "
        "trials.csv either way)",
    )
    parser.add_argument("--no-mlflow", action="store_true", help="log no MLflow run")
    parser.add_argument("--config", default=None, help="a settings TOML file")
    parser.add_argument(
        "--json", action="store_true", help="print the summary as JSON (and no progress bar)"
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    args = parse_args(argv)
    began = time.time()
    settings = load_settings(args.config)
    prices = Prices(
        test_ratio=args.t if args.t is not None else settings.test_token_price_ratio,
        charge_prompt=args.charge_prompt,
    )
    storage = args.storage or settings.optuna_storage
    summary, study = train_policy(args, prices, storage)
    summary["pareto_plot"] = str(_pareto_plot(summary, study, prices))
    if not args.no_mlflow:
        from training.train_tracking import log_training

        summary["mlflow_run_id"] = log_training(
            summary,
            study.trials,
            uri=settings.mlflow_uri,
            command=shlex.join(["sleeptime", "train", *argv]),
            storage=storage,
            pareto_runs=args.mlflow_trials,
            started_ms=int(began * 1000),
        )
    print(json.dumps(summary, indent=2) if args.json else _text(summary), flush=True)
    for warning in summary["warnings"]:
        print(f"warning: {warning}", file=sys.stderr)
    return 0


def train_policy(
    args: argparse.Namespace, prices: Prices, storage: str
) -> tuple[dict[str, Any], Any]:
    """Read the tables, split them by context, add the trials asked to the study, choose a
    policy and save it beside its estimators: the summary, and the Optuna study."""
    outcomes, features, rows = load_rows(args.outcomes)
    table = replay_table(outcomes, features, rows, seed=args.seed)
    splits = [table.subset(m) for m in split_masks(table.contexts, (0.6, 0.2, 0.2), args.seed)]
    choices = _choices(table)
    kind = REGISTRY[args.policy]
    space, seeds = kind.search_space(choices), kind.seeds(choices)
    started = time.perf_counter()
    name = args.study or _study_name(args)
    before = finished_trials(storage, name)  # every worker's trials count as this run's
    study = run_study(
        lambda p: _objective(p, splits[0], prices),
        storage=storage,
        name=name,
        trials=args.trials,
        seeds=seeds,
        space=space,
        policy=kind,
        min_accuracy=args.min_accuracy,
        seed=args.seed,
        progress=not args.json and sys.stdout.isatty(),
        workers=args.workers,
    )
    seconds = time.perf_counter() - started
    chosen = choose(
        study, splits[:2], prices, args.min_accuracy, lambda t: policy_of(t, space, kind)
    )
    finished = sum(t.state.is_finished() for t in study.trials)  # not seeds still waiting
    seed_policies = [kind(**(fixed_params(space) | s)) for s in seeds]
    summary = held_out_summary(chosen, splits, prices, choices) | {
        "trials": finished,
        "trials_this_run": finished - before,
        "workers": args.workers,
        "seeds": len(seeds),
        "warnings": search_warnings(chosen, seed_policies, finished),
        "seconds": round(seconds, 2),
        "replayed_queries": len(splits[0].query_ids),
        "t": prices.test_ratio,
        "charge_prompt": prices.charge_prompt,
        "policy_file": str(save(chosen, _ensure_parent(args.out), _formats(args.outcomes))),
        "estimators_file": str(_save_estimators(args.out, outcomes, rows)),
        "policy": chosen.to_dict(),
        "study": study.study_name,
        "policy_class": kind.name,
        "min_accuracy": args.min_accuracy,
        "seed": args.seed,
        "outcomes": [str(p) for p in args.outcomes],
        "split_contexts": {
            name: sorted(str(c) for c in part.contexts)
            for name, part in zip(("train", "validation", "test"), splits, strict=True)
        },
    }
    return summary, study


def _formats(tables: list[Path]) -> list[str]:
    """The answer formats of the tables' contexts (a context without one is a number's)."""
    return sorted(
        {c.get("answer_format") or "number" for t in tables for c in read_jsonl(t / CONTEXTS)}
    )


def _save_estimators(policy: Path, outcomes: list[Outcome], rows: list[dict[str, Any]]) -> Path:
    """Beside the policy: serve the two together (`serve --policy P --estimators E`)."""
    meta = {"low_rung": low_rung(outcomes), "model": "logistic"}
    return save_models(estimators_for(policy), fit_estimators(rows), meta)


def _choices(table: ReplayTable) -> Choices:
    full = [r for r in range(table.rungs) if not np.isnan(table.correct[:, 0, r]).all()]
    enriched = [
        r
        for r in range(table.rungs)
        if len(table.budgets) > 1 and not np.isnan(table.correct[:, 1:, r]).all()
    ]
    # Searched only where query lengths differ: otherwise no limit can tell queries apart.
    varied = np.ptp(table.query_words) > 0
    words = WORD_LIMITS if varied else [Learned.enriched_max_words]
    answered = [r for r in enriched if not np.isnan(table.answers[:, 1:, r]).all()]
    budgets = [int(k) for k in table.budgets[1:]] or [1]
    # The nearest anticipated answer can vote only where the table kept it and an answer on c'.
    voted = bool(answered) and not np.isnan(table.cached_answers[:, 1:]).all()
    return Choices(
        full,
        enriched or [0],
        budgets,
        words,
        check_rungs(answered),
        [False, True] if voted else [Learned.check_anticipated],
    )


def _objective(policy: Policy, table: ReplayTable, prices: Prices) -> tuple[float, float]:
    result = evaluate(policy, table, prices)
    return result.accuracy, result.cost


def _study_name(args: argparse.Namespace) -> str:
    """A study resumes only the same search: its space's version is part of the name."""
    mode = f"min-acc-{args.min_accuracy}" if args.min_accuracy is not None else "pareto"
    mode += "-prompt-charged" if args.charge_prompt else ""  # another objective, another study
    inputs = "+".join(p.name for p in args.outcomes)
    kind = "" if args.policy == Learned.name else f"-{args.policy}"  # learned: the old names
    return f"{inputs}{kind}-{mode}-seed{args.seed}-space{SEARCH_SPACE_VERSION}"


def _ensure_parent(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    return path


def _pareto_plot(summary: dict[str, Any], study: Any, prices: Prices) -> Path:
    """Beside the policy: every trial on the train split, the built-ins and the chosen
    policy on the test split."""
    from training import plots

    points = [(r["accuracy"], r["cost"], name) for name, r in summary["builtins"].items()]
    trial_points = [
        (t.user_attrs["accuracy"], t.user_attrs["cost"])
        for t in study.trials
        if "accuracy" in t.user_attrs
    ]
    plot = plots.pareto(
        trial_points,
        points,
        (summary["test_accuracy"], summary["test_cost"]),
        Path(summary["policy_file"]).with_suffix(".pareto.png"),
        title=f"Policy search, study {summary['study']}: accuracy against cost",
        cost_label=plots.cost_label(prices.test_ratio, prices.charge_prompt),
        train_note=f"{summary['replayed_queries']} queries",
        test_note=f"{summary['test_contexts']} held-out contexts, "
        f"{summary['test_queries']} queries",
    )
    return plot


def _text(s: dict[str, Any]) -> str:
    best = s["best_test_time_only"]
    ratio = s["cost_ratio_at_equal_accuracy"]
    lines = [
        f"{s['trials']} trials in the study ({s['trials_this_run']} added by this run) over "
        f"{s['replayed_queries']} replayed queries in {s['seconds']} s",
        f"validation ({s['validation_contexts']} contexts): accuracy "
        f"{s['validation_accuracy']:.3f}, cost {s['validation_cost']:.1f} per query",
        f"test ({s['test_contexts']} contexts, {s['test_queries']} queries): trained policy "
        f"accuracy {s['test_accuracy']:.3f}, cost {s['test_cost']:.1f} per query",
        f"best test-time-only: accuracy {best['accuracy']:.3f}, cost {best['cost']:.1f}; "
        + (
            f"cost ratio at equal accuracy {ratio:.2f}x"
            if ratio
            else f"accuracy gap {s['accuracy_gap_to_best_test_time_only']:+.3f}"
        ),
        f"dominated by built-ins: {s['dominated_by'] or 'none'}",
        f"policy written to {s['policy_file']} (estimators: {s['estimators_file']})",
    ]
    if "mlflow_run_id" in s:
        lines.append(f"MLflow run {s['mlflow_run_id']} in the experiment sleeptime-policy-training")
    return "\n".join(lines)
