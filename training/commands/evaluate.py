"""`sleeptime evaluate POLICY.json OUTCOMES...`: replay a policy beside every built-in."""

from __future__ import annotations

import argparse
import json
from dataclasses import asdict
from pathlib import Path

from policies import Prices, builtin_baselines, load
from router.settings import load_settings
from training.replay import ReplayResult, evaluate
from training.tables import load_replay_table


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="sleeptime evaluate", description=__doc__)
    parser.add_argument("policy", type=Path)
    parser.add_argument("outcomes", nargs="+", type=Path)
    parser.add_argument("--t", type=float, default=None)
    parser.add_argument("--config", default=None)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    settings = load_settings(args.config)
    prices = Prices(test_ratio=args.t if args.t is not None else settings.test_token_price_ratio)
    table = load_replay_table(args.outcomes)
    policy = load(args.policy)
    budgets = tuple(int(k) for k in table.budgets[1:])
    rows = {f"{args.policy.name} ({policy.name})": evaluate(policy, table, prices)}
    for baseline in builtin_baselines(range(table.rungs), budgets):
        result = evaluate(baseline, table, prices)
        if result.missing == 0:
            rows[_label(baseline.to_dict())] = result
    if args.json:
        print(json.dumps({name: asdict(r) for name, r in rows.items()}, indent=2))
    else:
        print(_table(rows, len(table.query_ids), len(table.contexts)))
    return 0


def _label(data: dict) -> str:
    return data["name"] + "(" + ", ".join(f"{k}={v}" for k, v in data["params"].items()) + ")"


def _table(rows: dict[str, ReplayResult], queries: int, contexts: int) -> str:
    head = f"{'policy':<44}{'accuracy':>9}{'cost':>9}{'full cost':>10}{'test tok':>9}"
    head += f"{'cached':>8}{'wrong@cache':>12}"
    lines = [f"{queries} queries, {contexts} contexts (replayed, no LLM calls)", head]
    for name, r in rows.items():
        lines.append(
            f"{name[:43]:<44}{r.accuracy:>9.3f}{r.cost:>9.1f}{r.full_cost:>10.1f}"
            f"{r.test_tokens:>9.1f}{r.cached_share:>8.2f}{r.cached_wrong_rate:>12.3f}"
        )
    return "\n".join(lines)
