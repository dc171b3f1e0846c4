"""`sleeptime train`: find the cheapest policy for the accuracy asked, by replay + Optuna.

Contexts are split into train / validation / test. Trials are scored by replay
on train; the policy is chosen on validation (the Pareto point that matches the
best test-time-only accuracy at the lowest cost, or the constrained optimum);
the figures reported are on test, beside every built-in policy. Every trial is
an MLflow child run of one parent run, which carries the Pareto plot and the
chosen policy's JSON.
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np

from policies import REGISTRY, Learned, Policy, Prices, builtin_baselines, save
from policies.space import Choices
from router.predictability import estimators_for, save_models
from router.settings import load_settings
from training.outcomes import Outcome
from training.replay import ReplayTable, evaluate
from training.search import (
    SEARCH_SPACE_VERSION,
    WORD_LIMITS,
    check_rungs,
    policy_of,
    run_study,
)
from training.tables import (
    fit_estimators,
    load_rows,
    low_rung,
    replay_table,
    split_masks,
)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="sleeptime train", description=__doc__)
    parser.add_argument("outcomes", nargs="+", type=Path)
    parser.add_argument("--trials", type=int, default=1000)
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
        default="mlruns/optuna.journal",
        help="journal file, or an RDB URL (sqlite:///..., postgresql://...)",
    )
    parser.add_argument("--study", default=None, help="study name (default: from the inputs)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=Path("policies/trained/policy.json"))
    parser.add_argument("--mlflow-trials", action=argparse.BooleanOptionalAction, default=True)
    parser.add_argument("--no-mlflow", action="store_true")
    parser.add_argument("--config", default=None)
    parser.add_argument("--json", action="store_true")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    settings = load_settings(args.config)
    prices = Prices(
        test_ratio=args.t if args.t is not None else settings.test_token_price_ratio,
        charge_prompt=args.charge_prompt,
    )
    outcomes, features, rows = load_rows(args.outcomes)
    table = replay_table(outcomes, features, rows, seed=args.seed)
    train, val, test = (
        table.subset(m) for m in split_masks(table.contexts, (0.6, 0.2, 0.2), args.seed)
    )
    choices = _choices(table)
    kind = REGISTRY[args.policy]
    space = kind.search_space(choices)
    started = time.perf_counter()
    log: list[tuple[int, Policy, tuple[float, float]]] = []
    study = run_study(
        lambda p: _objective(p, train, prices),
        storage=args.storage,
        name=args.study or _study_name(args),
        trials=args.trials,
        seeds=kind.seeds(choices),
        space=space,
        policy=kind,
        min_accuracy=args.min_accuracy,
        seed=args.seed,
        on_trial=lambda n, p, v: log.append((n, p, v)),
    )
    seconds = time.perf_counter() - started
    chosen = _choose(
        study, (train, val), prices, args.min_accuracy, lambda t: policy_of(t, space, kind)
    )
    summary = _summary(chosen, test, prices, choices) | {
        "trials": len(study.trials),
        "trials_this_run": len(log),
        "seconds": round(seconds, 2),
        "replayed_queries": len(train.query_ids),
        "t": prices.test_ratio,
        "charge_prompt": prices.charge_prompt,
        "policy_file": str(save(chosen, _ensure_parent(args.out))),
        "estimators_file": str(_save_estimators(args.out, outcomes, rows)),
        "policy": chosen.to_dict(),
        "study": study.study_name,
    }
    if not args.no_mlflow:
        summary["mlflow_run_id"] = _log_mlflow(
            summary, study, log, args, settings.mlflow_uri, test, prices
        )
    print(json.dumps(summary, indent=2) if args.json else _text(summary))
    return 0


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


def _choose(
    study: Any,
    seen: Sequence[ReplayTable],
    prices: Prices,
    min_accuracy: float | None,
    policy_of: Callable[[Any], Policy],
) -> Policy:
    """The cheapest Pareto policy that matches the best test-time-only accuracy (or the floor
    asked) on every split it has seen, training and validation; if none does, the most
    accurate on validation. Validation alone is 10 contexts on a 50-context table: across 8
    split seeds its choice lost up to 0.15 on the held-out contexts, matching on both at
    most 0.10 (README)."""
    candidates = [
        policy_of(t)
        for t in (
            study.best_trials
            if min_accuracy is None
            else sorted(study.trials, key=lambda t: t.user_attrs.get("cost", 1e18))[:50]
        )
        if t.values is not None
    ]
    targets = [
        min_accuracy if min_accuracy is not None else _best_test_only(t, prices).accuracy
        for t in seen
    ]
    val = seen[-1]
    good = []
    for i, policy in enumerate(candidates):
        results = [evaluate(policy, t, prices) for t in seen]
        if all(r.accuracy >= target - 1e-9 for r, target in zip(results, targets, strict=True)):
            good.append((results[-1].cost, i))
    if good:
        return candidates[min(good)[1]]
    scored = [(evaluate(p, val, prices), p) for p in candidates]
    return max(scored, key=lambda rp: (rp[0].accuracy, -rp[0].cost))[1]


def _best_test_only(table: ReplayTable, prices: Prices) -> Any:
    results = [evaluate(p, table, prices) for p in builtin_baselines(range(table.rungs), ())]
    return max((r for r in results if r.missing == 0), key=lambda r: (r.accuracy, -r.cost))


def _summary(
    chosen: Policy, test: ReplayTable, prices: Prices, space: Choices
) -> dict[str, Any]:
    result = evaluate(chosen, test, prices)
    baselines = [
        p
        for p in builtin_baselines(range(test.rungs), tuple(space.budgets))
        if getattr(p, "rung", 0)
        in (space.rungs_full if p.name == "test-time-only" else space.rungs_enriched)
    ]
    rows = {_label(p): asdict(evaluate(p, test, prices)) for p in baselines}
    best = max(
        (r for r in rows.values() if r["sleep_tokens"] == 0 and r["missing"] == 0),
        key=lambda r: (r["accuracy"], -r["cost"]),
    )
    dominated = [
        name
        for name, r in rows.items()
        if r["accuracy"] >= result.accuracy and r["cost"] < result.cost
    ]
    matches = result.accuracy >= best["accuracy"] - 1e-9
    return {
        "test_accuracy": result.accuracy,
        "test_cost": result.cost,
        "test_full_cost": result.full_cost,
        "test_result": asdict(result),
        "best_test_time_only": best,
        "cost_ratio_at_equal_accuracy": best["cost"] / result.cost
        if matches and result.cost
        else None,
        "accuracy_gap_to_best_test_time_only": result.accuracy - best["accuracy"],
        "dominated_by": dominated,
        "builtins": rows,
        "test_contexts": len(test.contexts),
        "test_queries": len(test.query_ids),
    }


def _label(policy: Policy) -> str:
    return f"{policy.name}(" + ", ".join(f"{k}={v}" for k, v in policy.params().items()) + ")"


def _log_mlflow(
    summary: dict[str, Any],
    study: Any,
    log: list,
    args: argparse.Namespace,
    uri: str,
    test: ReplayTable,
    prices: Prices,
) -> str:
    from training import plots, tracking

    with tracking.run(uri, "sleeptime-policy-training", summary["study"]) as parent:
        tracking.log_params(
            {
                "trials": args.trials,
                "min_accuracy": args.min_accuracy,
                "t": prices.test_ratio,
                "charge_prompt": prices.charge_prompt,
                "outcomes": [str(p) for p in args.outcomes],
                "seed": args.seed,
            }
            | {f"policy.{k}": v for k, v in summary["policy"]["params"].items()}
        )
        tracking.log_metrics(
            {
                k: summary[k]
                for k in (
                    "test_accuracy",
                    "test_cost",
                    "seconds",
                    "cost_ratio_at_equal_accuracy",
                    "test_full_cost",
                )
            }
        )
        if args.mlflow_trials:
            tracking.log_child_runs(
                [(f"trial {n}", p.params(), {"accuracy": v[0], "cost": v[1]}) for n, p, v in log]
            )
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
        )
        tracking.log_artifact(plot)
        tracking.log_artifact(Path(summary["policy_file"]))
        return str(parent.info.run_id)


def _text(s: dict[str, Any]) -> str:
    best = s["best_test_time_only"]
    ratio = s["cost_ratio_at_equal_accuracy"]
    lines = [
        f"{s['trials']} trials ({s['trials_this_run']} this run) over {s['replayed_queries']} "
        f"replayed queries in {s['seconds']} s",
        f"test ({s['test_contexts']} contexts, {s['test_queries']} queries): trained policy "
        f"accuracy {s['test_accuracy']:.3f}, cost {s['test_cost']:.1f} per query",
        f"best test-time-only: accuracy {best['accuracy']:.3f}, cost {best['cost']:.1f}; "
        + (
            f"cost ratio at equal accuracy {ratio:.2f}x"
            if ratio
            else f"accuracy gap {s['accuracy_gap_to_best_test_time_only']:+.3f}"
        ),
        f"dominated by built-ins: {s['dominated_by'] or 'none'}",
        f"policy written to {s['policy_file']}",
    ]
    return "\n".join(lines)
