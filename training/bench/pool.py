"""`sleeptime bench pool FILE...`: several live replays as one sample, from their files alone.

One `bench replay` run is 16-24 contexts: its 95% intervals are about +-0.12, too wide
to tell "equal accuracy" from a few points lost. Runs over different contexts with the
same policy pool into one sample. This reads the files `bench replay --out` wrote (every
query both arms asked, and what sleep time spent) and prints, with no LLM call:

    each arm over every query   accuracy (95% interval, bootstrap over contexts), test
                                and prompt tokens per query, cost per query (t * test +
                                sleep / queries of the context) and the same with prompt
                                tokens charged (cached ones at the cached price)
    the paired difference       policy minus pass-through on the same queries, with a
                                bootstrap interval over contexts (both arms asked each
                                query, so the pairing removes the contexts' spread)
    where the policy saved      the queries it served from the learned context, and how
                                often each arm was right on exactly those queries

Files written before the per-query cached prompt tokens were kept count every prompt
token as uncached: their cost with prompt tokens is an upper bound (`cached_known`).
"""

from __future__ import annotations

import argparse
import json
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np

from policies import Prices
from router.errors import InputError
from training.bench.arms import Arm, Asked, ratios, summarize
from training.stats import Interval

ARMS = ("pass-through", "policy")
CHEAP_ROUTES = ("enriched", "cached")  # answered without full reasoning on the raw context


class PoolError(ValueError):
    """Files that cannot be pooled: a different price ratio, or arms that asked different
    queries."""


def load(paths: Sequence[Path]) -> list[dict[str, Any]]:
    replays = [json.loads(Path(p).read_text()) for p in paths]
    if len({r["t"] for r in replays}) > 1:
        raise PoolError(
            f"the files were priced with different t: {sorted({r['t'] for r in replays})}"
        )
    for path, replay in zip(paths, replays, strict=True):
        keys = [[(q["context"], q["query"]) for q in replay["queries"][a]] for a in ARMS]
        if sorted(keys[0]) != sorted(keys[1]):
            raise PoolError(f"{path}: the two arms asked different queries")
    return replays


def pooled_arm(name: str, replays: list[dict[str, Any]], prices: Prices) -> Arm:
    """Pure: `summarize` over every query of every file. A file keeps its arm's sleep tokens
    per context, not each context's: spread evenly, they amortize to the same mean cost."""
    asked = [Asked(**q) for r in replays for q in r["queries"][name]]
    sleep = {
        q["context"]: r["arms"][name]["sleep_tokens"] for r in replays for q in r["queries"][name]
    }
    return summarize(name, asked, sleep, replays[0]["t"], prices)


def paired_difference(replays: list[dict[str, Any]], *, samples: int = 2000) -> Interval:
    """Policy minus pass-through accuracy, resampling whole contexts of both arms at once."""
    gain: dict[str, float] = defaultdict(float)
    asked: dict[str, int] = defaultdict(int)
    for replay in replays:
        for sign, arm in ((-1.0, "pass-through"), (1.0, "policy")):
            for q in replay["queries"][arm]:
                gain[q["context"]] += sign * bool(q["correct"])
                asked[q["context"]] += arm == "policy"
    names = sorted(gain)
    diff, n = np.array([gain[c] for c in names]), np.array([asked[c] for c in names], float)
    draws = np.random.default_rng(0).integers(0, len(names), size=(samples, len(names)))
    low, high = np.percentile(diff[draws].sum(axis=1) / n[draws].sum(axis=1), [2.5, 97.5])
    return Interval(float(diff.sum() / n.sum()), float(low), float(high))


def where_saved(replays: list[dict[str, Any]]) -> dict[str, int]:
    """On the queries the policy answered cheaply: how often each arm was right."""
    out = {"cheap": 0, "policy_right": 0, "pass_through_right": 0}
    for replay in replays:
        plain = {(q["context"], q["query"]): q for q in replay["queries"]["pass-through"]}
        for q in replay["queries"]["policy"]:
            if q["route"] in CHEAP_ROUTES:
                out["cheap"] += 1
                out["policy_right"] += bool(q["correct"])
                out["pass_through_right"] += bool(plain[(q["context"], q["query"])]["correct"])
    return out


def pool(replays: list[dict[str, Any]], prices: Prices | None = None) -> dict[str, Any]:
    base, policy = (pooled_arm(name, replays, prices or Prices()) for name in ARMS)
    return {
        "files": len(replays),
        "cached_known": all(
            "cached_prompt_tokens" in q for r in replays for a in ARMS for q in r["queries"][a]
        ),
        "arms": {arm.name: asdict(arm) for arm in (base, policy)},
        **ratios(base, policy),
        "accuracy_difference": asdict(paired_difference(replays)),  # paired, with an interval
        "served_cheap": where_saved(replays),
    }


def _text(result: dict[str, Any]) -> str:
    lines = [
        f"{'arm':>12}  queries  contexts  accuracy [95% CI]      test tok  prompt tok  "
        "cost/query  with prompt"
    ]
    for arm in result["arms"].values():
        lines.append(
            f"{arm['name']:>12}  {arm['queries']:>7}  {arm['contexts']:>8}  {arm['accuracy']:.3f} "
            f"[{arm['accuracy_low']:.3f}, {arm['accuracy_high']:.3f}]  {arm['test_tokens']:>8.1f}  "
            f"{arm['prompt_tokens']:>10.1f}  {arm['cost']:>10.1f}  {arm['full_cost']:>11.1f}"
        )
    d, cheap = result["accuracy_difference"], result["served_cheap"]
    bound = "" if result["cached_known"] else " (an upper bound: some files kept no cached tokens)"
    lines += [
        f"accuracy difference, policy - pass-through: {d['mean']:+.3f} "
        f"[{d['low']:+.3f}, {d['high']:+.3f}] (paired bootstrap over contexts)",
        f"pass-through / policy: test tokens {result['test_token_ratio']}x, cost "
        f"{result['cost_ratio']}x, cost with prompt tokens {result['full_cost_ratio']}x{bound}",
        f"answered cheaply: {cheap['cheap']} queries; right {cheap['policy_right']} "
        f"(pass-through right on the same queries: {cheap['pass_through_right']})",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="sleeptime bench pool", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)  # fmt: skip
    p.add_argument("files", nargs="+", type=Path, help="JSON files of `bench replay --out`")
    p.add_argument("--json", action="store_true", help="print the pooled result as JSON")
    args = p.parse_args(argv)
    try:
        result = pool(load(args.files))
    except (KeyError, TypeError) as exc:
        raise InputError(f"not a `bench replay --out` file: no {exc}") from exc
    except OSError as exc:
        raise InputError(f"cannot read {exc.filename}: {exc.strerror}") from exc
    except (PoolError, json.JSONDecodeError) as exc:
        raise InputError(str(exc)) from exc
    print(json.dumps(result, indent=2) if args.json else _text(result))
    return 0
