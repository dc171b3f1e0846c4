"""`sleeptime bench scoring`: what the trained router adds to one request, on this machine.

The router's work per request (`PolicyRouter.decide`): embed the query with
the anticipated questions of its context, build the features, run the
calibrated estimators and the policy. Timed here one request at a time, on
real contexts and queries of an outcome table and the committed estimators,
after one pass over every context; printed as p50/p99 in ms, split into the
query's embedding and the rest, beside the pass-through router's decision (the
baseline, which costs nothing). The first query of each context version also
embeds its anticipated questions (cached after that), reported apart. The
embedding model runs on the CPU threads torch picks (2 here).
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np

from router.errors import InputError
from router.store.base import ContextRecord
from training.outcome_features import anticipated_for
from training.outcomes import CONTEXTS, SLEEP, read_jsonl

TARGET_P50_MS = 25.0
ROOT = Path(__file__).resolve().parents[2]
DEFAULTS = {
    "outcomes": ROOT / "benchmarks" / "gsm8k-qwen2.5-coder-1.5b",
    "policy": ROOT / "benchmarks" / "policies" / "gsm8k-learned.json",
    "estimators": ROOT / "benchmarks" / "estimators" / "predictability-gsm8k.pkl",
}


def contexts_and_queries(folder: Path) -> list[tuple[ContextRecord, str]]:
    """Each query beside its context as the proxy's store would hold it after one pass."""
    passes: dict[str, list[dict]] = defaultdict(list)
    for record in read_jsonl(folder / SLEEP):
        passes[record["context_id"]].append(record)
    pairs = []
    for problem in read_jsonl(folder / CONTEXTS):
        anticipated = [
            {"question": a.question, "answer": a.answer, "agreement": a.agreement}
            for a in anticipated_for(passes[problem["id"]], 1)
        ]
        if not anticipated:
            continue
        record = ContextRecord(
            "bench", problem["id"], 1, problem["context"], "explicit", 2, "done",
            "notes", anticipated, 200, None, 0.0,
        )  # fmt: skip
        pairs += [(record, q["question"]) for q in problem["queries"]]
    return pairs


def timed_ms(call: Any, *args: Any) -> float:
    started = time.perf_counter()
    call(*args)
    return (time.perf_counter() - started) * 1e3


def percentiles(samples: list[float]) -> dict[str, float]:
    ordered = sorted(samples)
    return {
        "p50_ms": round(statistics.median(ordered), 3),
        "p99_ms": round(ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))], 3),
    }


def run(args: argparse.Namespace) -> dict[str, Any]:
    from router.commands.serve import policy_files
    from router.embeddings import default_embedder
    from router.policy_router import PolicyRouter
    from router.proxy.routing import PassThroughRouter

    policy_files(args.policy, args.estimators)  # before the embedding model loads
    for name in (CONTEXTS, SLEEP):
        if not (args.outcomes / name).is_file():
            raise InputError(f"{args.outcomes} has no {name}: give a table `collect` wrote")
    pairs = contexts_and_queries(args.outcomes)
    embedder = default_embedder()
    router = PolicyRouter.from_files(args.policy, args.estimators, embedder.encode)
    plain = PassThroughRouter()
    first: dict[str, float] = {}  # the first query of a context also embeds its anticipated
    for record, query in pairs:
        spent = timed_ms(router.decide, "bench", record, query)
        first.setdefault(record.context_id, spent)
    decide, embed, baseline = [], [], []
    for index in range(args.requests):
        record, query = pairs[index % len(pairs)]
        embed.append(timed_ms(embedder.encode, [query]))
        decide.append(timed_ms(router.decide, "bench", record, query))
        baseline.append(timed_ms(plain.decide, "bench", record, query))
    rest = list(np.maximum(np.array(decide) - np.array(embed), 0.0))
    result = {
        "requests": args.requests,
        "queries": len(pairs),
        "policy_router": percentiles(decide),
        "first_query_of_a_context": percentiles(list(first.values())[1:] or [0.0]),
        "embedding": percentiles(embed),
        "features_estimators_policy": percentiles(rest),
        "pass_through_router": percentiles(baseline),
        "target_p50_ms": TARGET_P50_MS,
    }
    result["meets_target"] = result["policy_router"]["p50_ms"] <= TARGET_P50_MS
    return result


def add_parser(sub: argparse._SubParsersAction) -> None:
    scoring = sub.add_parser("scoring", help="the trained router's time per request")
    add = scoring.add_argument
    add("--outcomes", type=Path, default=DEFAULTS["outcomes"],
        help="an outcome table's folder: its contexts and queries (default: the committed "
        "gsm8k table)")
    add("--policy", type=Path, default=DEFAULTS["policy"], help="a policy file")
    add("--estimators", type=Path, default=DEFAULTS["estimators"],
        help="the estimators the policy reads")
    add("--requests", type=int, default=500, help="requests timed (default 500)")
    add("--json", action="store_true", help="print one JSON object")  # fmt: skip


def main(args: argparse.Namespace) -> int:
    result = run(args)
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        p, e, r = (
            result["policy_router"],
            result["embedding"],
            result["features_estimators_policy"],
        )
        print(
            f"policy router per request over {result['requests']} requests: "
            f"p50 {p['p50_ms']} ms, p99 {p['p99_ms']} ms (target p50 <= {TARGET_P50_MS:g} ms); "
            f"embedding p50 {e['p50_ms']} ms, features+estimators+policy p50 {r['p50_ms']} ms; "
            f"first query of a context p50 {result['first_query_of_a_context']['p50_ms']} ms; "
            f"pass-through router p50 {result['pass_through_router']['p50_ms']} ms"
        )
    return 0
