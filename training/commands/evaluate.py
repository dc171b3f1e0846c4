"""`sleeptime evaluate POLICY.json OUTCOMES...`: replay a policy beside every built-in.

By default only on the contexts the policy never saw: `sleeptime train` splits the
contexts of its tables into train / validation / test (0.6 / 0.2 / 0.2, by its --seed),
tunes on train and chooses on validation, so the honest figure is on test. Give the
tables and the seed `train` was given; `--split all` replays every context, those the
policy was tuned on included.
"""

from __future__ import annotations

import argparse
import json
from dataclasses import asdict
from pathlib import Path

from policies import Policy, PolicyError, Prices, builtin_baselines, load
from router.errors import InputError
from router.settings import load_settings
from training.replay import ReplayResult, ReplayTable, evaluate
from training.tables import load_replay_table, split_masks

SPLITS = ("train", "validation", "test")
SHARES = (0.6, 0.2, 0.2)  # `sleeptime train`'s split of the contexts, in SPLITS' order


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="sleeptime evaluate",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("policy", type=Path, help="a policy file (`sleeptime train` writes one)")
    parser.add_argument("outcomes", nargs="+", type=Path, help="outcome table folders")
    parser.add_argument(
        "--split",
        choices=[*SPLITS, "all"],
        default="test",
        help="the contexts replayed: one part of train's split, or all (default test: the "
        "contexts the policy was neither tuned nor chosen on)",
    )
    parser.add_argument(
        "--seed",
        type=int,
        default=0,
        help="the seed `train` split the contexts and fit the estimators' folds with (its "
        "--seed; default 0)",
    )
    parser.add_argument(
        "--t", type=float, default=None, help="price of a test-time token in sleep-time tokens "
        "(default: the test_token_price_ratio setting, 10)",
    )  # fmt: skip
    parser.add_argument("--config", default=None, help="a TOML settings file")
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    settings = load_settings(args.config)
    prices = Prices(test_ratio=args.t if args.t is not None else settings.test_token_price_ratio)
    policy = load_policy(args.policy)
    whole = load_replay_table(args.outcomes, seed=args.seed)
    table = split(whole, args.split, args.seed)
    budgets = tuple(int(k) for k in table.budgets[1:])
    rows = {f"{args.policy.name} ({policy.name})": evaluate(policy, table, prices)}
    for baseline in builtin_baselines(range(table.rungs), budgets):
        result = evaluate(baseline, table, prices)
        if result.missing == 0:
            rows[_label(baseline.to_dict())] = result
    scope = {
        "split": args.split,
        "seed": args.seed,
        "contexts": len(table.contexts),
        "of_contexts": len(whole.contexts),
        "queries": len(table.query_ids),
    }
    if args.json:
        results = {name: asdict(r) for name, r in rows.items()}
        print(json.dumps(results | {"scope": scope}, indent=2))
    else:
        print(_table(rows, scope))
    return 0


def load_policy(path: Path) -> Policy:
    if not path.is_file():
        raise InputError(f"no policy file at {path}: give one written by `sleeptime train`")
    try:
        return load(path)
    except (PolicyError, TypeError, AttributeError, UnicodeDecodeError) as exc:
        raise InputError(f"{path} is not a policy file: {exc}") from exc


def split(table: ReplayTable, name: str, seed: int) -> ReplayTable:
    """The contexts of one part of `train`'s split (the same masks for the same tables and
    seed), or the whole table."""
    if name == "all":
        return table
    part = table.subset(split_masks(table.contexts, SHARES, seed)[SPLITS.index(name)])
    if not len(part.contexts):
        raise InputError(f"the {name} split is empty: {len(table.contexts)} contexts in all")
    return part


def _label(data: dict) -> str:
    return data["name"] + "(" + ", ".join(f"{k}={v}" for k, v in data["params"].items()) + ")"


def _table(rows: dict[str, ReplayResult], scope: dict) -> str:
    head = f"{'policy':<44}{'accuracy':>9}{'cost':>9}{'full cost':>10}{'test tok':>9}"
    head += f"{'cached':>8}{'wrong@cache':>12}"
    which = (
        "every context"
        if scope["split"] == "all"
        else f"the {scope['split']} split of `train --seed {scope['seed']}`"
    )
    lines = [
        f"{which}: {scope['queries']} queries, {scope['contexts']} of {scope['of_contexts']} "
        "contexts (replayed, no LLM calls)",
        head,
    ]
    for name, r in rows.items():
        lines.append(
            f"{name[:43]:<44}{r.accuracy:>9.3f}{r.cost:>9.1f}{r.full_cost:>10.1f}"
            f"{r.test_tokens:>9.1f}{r.cached_share:>8.2f}{r.cached_wrong_rate:>12.3f}"
        )
    return "\n".join(lines)
