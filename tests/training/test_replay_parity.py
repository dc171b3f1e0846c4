"""Replay and the proxy decide alike: the product's central promise, checked per policy.

One outcome table (synthetic: half its contexts predictable) is replayed by
`training.replay`, and the same records are driven through the proxy's decision path:
`router.policy_router.PolicyRouter` (features from the stored learned context and one
embedding of the query, the same estimators, the policy) for every query, and its sleep
planning (the worker's probe budget, then the passes the policy asks for) for every
context. The decisions must be the same, and so must the cost once each query's calls
are priced as the proxy prices a record (`Prices.paper_cost`) and each context's sleep
passes as the worker would run them.
"""

from __future__ import annotations

import dataclasses
from collections import defaultdict

import numpy as np
import pytest
from synthetic_outcomes import encode, write_synthetic

from policies import AlwaysSleep, Learned, Policy, Prices, TestTimeOnly, Threshold
from router.ladder import rung
from router.policy_router import PolicyRouter
from router.predictability import matrix
from router.sleep import LearnedContext, SleepBudget
from router.store.base import ContextRecord
from training.outcome_features import anticipated_for
from training.outcomes import CONTEXTS, SLEEP, read_jsonl
from training.replay import ROUTE_CODES, ReplayTable, build_table, decisions, evaluate
from training.tables import fit_estimators, load_rows

CODES = {code: name for name, code in ROUTE_CODES.items()}
PRICES = Prices()
BUILTINS: list[Policy] = [
    TestTimeOnly(rung=3),
    AlwaysSleep(passes=1, rung=0),
    Threshold(cached_threshold=0.7, enriched_threshold=0.4, enriched_rung=0, full_rung=3),
    Learned(sleep_min_value=0.3, cached_threshold=0.8, enriched_threshold=0.3, full_rung=3),
    Learned(sleep_min_value=0.9, cached_threshold=2.0, enriched_threshold=0.0, full_rung=3),
]


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> dict:
    folder = write_synthetic(tmp_path_factory.mktemp("parity") / "table", contexts=24)
    outcomes, features, rows = load_rows([folder])
    models = fit_estimators(rows)
    score = {
        name: dict(zip(
            [(r["query_id"], r["sleep_passes"]) for r in rows],
            model.predict_proba(matrix(rows, model.features))[:, 1], strict=True,
        ))
        for name, model in models.items()
    }  # fmt: skip
    per_context: dict[str, list[float]] = defaultdict(list)
    for r in rows:
        per_context[r["context_id"]].append(score["context"][(r["query_id"], r["sleep_passes"])])
    table = build_table(
        outcomes,
        features,
        cached_confidence=score["cached"],
        enriched_confidence=score["enriched"],
        predictability={c: float(np.mean(v)) for c, v in per_context.items()},
    )
    passes: dict[str, list[dict]] = defaultdict(list)
    for record in read_jsonl(folder / SLEEP):
        passes[record["context_id"]].append(record)
    contexts = {c["id"]: c for c in read_jsonl(folder / CONTEXTS)}
    return {"table": table, "models": models, "passes": passes, "contexts": contexts}


def stored(problem: dict, passes: list[dict], k: int) -> ContextRecord:
    """The context as the worker leaves it in the store after k passes."""
    anticipated = [dataclasses.asdict(a) for a in anticipated_for(passes, k)]
    return ContextRecord(
        "tenant", problem["id"], 1, problem["context"], "explicit", 1, "done" if k else None,
        "notes" if k else None, anticipated if k else None, 200 * k, None, 0.0,
        float(len(problem["queries"])), sum(p["truncated"] for p in passes if p["pass"] < k),
    )  # fmt: skip


def learned_after(passes: list[dict], n: int) -> LearnedContext:
    return LearnedContext("notes", anticipated_for(passes, n), n)


def worker_passes(router: PolicyRouter, record: ContextRecord, passes: list[dict]) -> int:
    """What the proxy's worker runs: the probe budget, then what the policy asks for."""
    probe = router.sleep_budget(SleepBudget())(record).passes
    if probe == 0:
        return 0
    return max(1, router.passes_after_probe(record, learned_after(passes, probe)))


@pytest.mark.parametrize("policy", BUILTINS, ids=lambda p: f"{p.name}:{p.params()}")
class TestReplayProxyParity:
    def drive(self, policy: Policy, world: dict) -> tuple[list[tuple], float, dict[str, int]]:
        """Every query of the table through the proxy's router; the cost as the proxy books it."""
        table: ReplayTable = world["table"]
        router = PolicyRouter(policy, world["models"], encode)
        routes, costs, slept = [], [], {}
        for i, query_id in enumerate(table.query_ids):
            context_id = str(table.contexts[table.context_index[i]])
            problem, passes = world["contexts"][context_id], world["passes"][context_id]
            if context_id not in slept:
                slept[context_id] = worker_passes(router, stored(problem, passes, 1), passes)
            ran = slept[context_id]
            record = stored(problem, passes, min(ran, 1))  # the table holds one pass
            question = next(q["question"] for q in problem["queries"] if q["id"] == query_id)
            decision = router.decide("tenant", record, question)
            routes.append((decision.route, decision.rung, decision.check_rung))
            k = 1 if decision.route == "enriched" else 0
            tokens = 0.0
            if decision.route != "cached":
                r = next(j for j in range(table.rungs) if rung(j).name == decision.rung)
                tokens = table.completion[i, k, r]
            share = 200 * ran / table.queries_per_context[table.context_index[i]]
            costs.append(PRICES.paper_cost(tokens, share))
        return routes, float(np.mean(costs)), slept

    def replayed(self, policy: Policy, world: dict) -> list[tuple]:
        d = decisions(policy, world["table"])
        out = []
        for i in range(len(d.k)):
            route = CODES[int(d.route[i])]
            name = None if route == "cached" else rung(int(d.rung[i])).name
            out.append((route, name, None))
        return out

    def test_same_decisions(self, policy: Policy, world: dict) -> None:
        proxied, _, _ = self.drive(policy, world)
        assert proxied == self.replayed(policy, world)

    def test_same_sleep_passes(self, policy: Policy, world: dict) -> None:
        _, _, slept = self.drive(policy, world)
        paid = decisions(policy, world["table"]).paid
        budgets = world["table"].budgets
        replayed = {str(c): int(budgets[paid[j]]) for j, c in enumerate(world["table"].contexts)}
        assert slept == replayed

    def test_same_cost(self, policy: Policy, world: dict) -> None:
        _, cost, _ = self.drive(policy, world)
        assert cost == pytest.approx(evaluate(policy, world["table"], PRICES).cost, rel=1e-12)
