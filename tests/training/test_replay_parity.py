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
from pathlib import Path

import numpy as np
import pytest
from fake_upstream import FakeUpstream, Recorded, Reply, completion, usage_body
from synthetic_outcomes import encode, write_synthetic

from policies import AlwaysSleep, Learned, Policy, Prices, TestTimeOnly, Threshold
from router.answering import NOTES_HINT
from router.ladder import rung
from router.policy_router import PolicyRouter
from router.predictability import matrix
from router.sleep import LearnedContext, SleepBudget
from router.store.base import ContextRecord
from training.outcome_features import anticipated_for
from training.outcomes import CONTEXTS, SLEEP, read_jsonl
from training.replay import (
    ROUTE_CODES,
    Decisions,
    ReplayTable,
    build_table,
    decisions,
    evaluate,
    outcomes,
)
from training.tables import fit_estimators, load_rows

CODES = {code: name for name, code in ROUTE_CODES.items()}
PRICES = Prices()
BUILTINS: list[Policy] = [
    TestTimeOnly(rung=3),
    AlwaysSleep(passes=1, rung=0),
    Threshold(cached_threshold=0.7, enriched_threshold=0.4, enriched_rung=0, full_rung=3),
    Learned(sleep_min_value=0.3, cached_threshold=0.8, enriched_threshold=0.3, full_rung=3),
    Learned(sleep_min_value=0.9, cached_threshold=2.0, enriched_threshold=0.0, full_rung=3),
    Learned(sleep_min_value=0.0, cached_threshold=2.0, enriched_threshold=0.0, check_rung=3),
    Learned(sleep_min_value=0.0, cached_threshold=0.9, check_anticipated=True),
]
UNCHECKED = [p for p in BUILTINS if getattr(p, "check_rung", -1) < 0]
UNCHECKED = [p for p in UNCHECKED if not getattr(p, "check_anticipated", False)]


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


class ProxyDriver:
    """The proxy's decision path over the table's records: its router and worker plan."""

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
            routes.append(
                (decision.route, decision.rung, decision.check_rung, decision.check_answer)
            )
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
            check = rung(int(d.check[i])).name if d.check[i] >= 0 else None
            anticipated = self.nearest_answer(world, i) if d.anticipated[i] else None
            out.append((route, name, check, anticipated))
        return out

    def nearest_answer(self, world: dict, i: int) -> str:
        """The anticipated answer a checked query is voted against (the cached route's)."""
        table: ReplayTable = world["table"]
        context_id = str(table.contexts[table.context_index[i]])
        problem, passes = world["contexts"][context_id], world["passes"][context_id]
        question = next(q["question"] for q in problem["queries"] if q["id"] == table.query_ids[i])
        router = PolicyRouter(Learned(), world["models"], encode)
        return router.features(stored(problem, passes, 1), question)[1]["answer"]


@pytest.mark.parametrize("policy", BUILTINS, ids=lambda p: f"{p.name}:{p.params()}")
class TestReplayProxyParity(ProxyDriver):
    def test_same_decisions(self, policy: Policy, world: dict) -> None:
        proxied, _, _ = self.drive(policy, world)
        assert proxied == self.replayed(policy, world)

    def test_same_sleep_passes(self, policy: Policy, world: dict) -> None:
        _, _, slept = self.drive(policy, world)
        paid = decisions(policy, world["table"]).paid
        budgets = world["table"].budgets
        replayed = {str(c): int(budgets[paid[j]]) for j, c in enumerate(world["table"].contexts)}
        assert slept == replayed


@pytest.mark.parametrize("policy", UNCHECKED, ids=lambda p: f"{p.name}:{p.params()}")
class TestReplayProxyCost(ProxyDriver):
    """Unchecked answers make one call each, priced here; the live class prices the rest."""

    def test_same_cost(self, policy: Policy, world: dict) -> None:
        _, cost, _ = self.drive(policy, world)
        assert cost == pytest.approx(evaluate(policy, world["table"], PRICES).cost, rel=1e-12)


@pytest.mark.parametrize("policy", BUILTINS, ids=lambda p: f"{p.name}:{p.params()}")
class TestReplayLiveProxyParity:
    """The same, end to end: the real proxy over HTTP, the `openai` client sending each query
    as an application would, a fake upstream that answers every call with the tokens the
    table recorded for the action the proxy actually asked for (read off the request: the
    notes present or not, the rung's instruction), and the cost read back from the proxy's
    own request records in its store."""

    def test_same_routes_and_cost_over_http(
        self, policy: Policy, world: dict, tmp_path: Path
    ) -> None:
        import openai

        from router.local_server import free_port
        from router.proxy.app import create_app
        from router.proxy.config import ProxyConfig
        from router.proxy.server import ServerThread
        from router.proxy.tenants import Tenants
        from router.settings import Settings
        from router.store import SqliteStore

        table: ReplayTable = world["table"]
        router = PolicyRouter(policy, world["models"], encode)
        self.request_ids: list[str] = []
        asked: list[tuple[str, int, int]] = []  # (query, k, rung) the upstream was asked
        current = [0]  # the query being asked: the client asks one at a time
        answer = lambda request: self.answer(request, world, current[0], asked)  # noqa: E731
        with FakeUpstream(fallback=answer) as fake:
            settings = Settings(cache_dir=tmp_path, upstream_url=fake.url, upstream_model="m")
            config = ProxyConfig.from_settings(settings, sleep_enabled=False)
            tenant = Tenants.from_file(config.salt_file).identify("Bearer sk-parity")
            slept = self.slept_as_the_worker_would(router, world, tenant, config)
            with ServerThread(create_app(config, router=router), free_port()) as server:
                client = openai.OpenAI(base_url=server.url, api_key="sk-parity", max_retries=0)
                routes = []
                for i in range(len(table.query_ids)):
                    current[0] = i
                    routes.append(self.ask(client, world, table, i))
        d = decisions(policy, table)
        escalated = outcomes(table, d).escalate
        expected = [
            ("full", rung(int(d.fallback[i])).name)
            if escalated[i]
            else (CODES[int(d.route[i])], None if d.route[i] == 0 else rung(int(d.rung[i])).name)
            for i in range(len(d.k))
        ]
        assert routes == expected
        assert sorted(asked) == sorted(self.priced_calls(table, d, escalated))
        store = SqliteStore(config.database)
        records = [store.get_record(tenant, rid) for rid in self.request_ids]
        per_context = {c: table.queries_per_context[j] for j, c in enumerate(table.contexts)}
        costs = [
            r.cost + 200 * slept[r.context_id] / per_context[r.context_id]
            for r in records
            if r is not None and r.context_id is not None
        ]
        assert len(costs) == len(table.query_ids)
        assert float(np.mean(costs)) == pytest.approx(evaluate(policy, table, PRICES).cost)

    @staticmethod
    def priced_calls(table: ReplayTable, d: Decisions, escalated: np.ndarray) -> list[tuple]:
        """Every (query, k, rung) call replay charged: the answer, a second rung that checks
        it, the full answer that replaces a checked one voted down; none for a cached one."""
        calls = []
        for i, query_id in enumerate(table.query_ids):
            route = CODES[int(d.route[i])]
            if route == "cached":
                continue
            calls.append((str(query_id), int(d.k[i]) if route == "enriched" else 0, int(d.rung[i])))
            if route == "enriched" and d.check[i] >= 0:
                calls.append((str(query_id), int(d.k[i]), int(d.check[i])))
            if escalated[i]:
                calls.append((str(query_id), 0, int(d.fallback[i])))
        return calls

    def slept_as_the_worker_would(
        self, router: PolicyRouter, world: dict, tenant: str, config: object
    ) -> dict[str, int]:
        """Registers every context and stores what the worker's plan would have learned."""
        from router.store import SqliteStore
        from router.store.base import LearnedRecord

        store = SqliteStore(config.database)  # type: ignore[attr-defined]
        slept = {}
        for context_id, problem in world["contexts"].items():
            passes = world["passes"][context_id]
            record = store.register_context(
                tenant, context_id, problem["context"], float(len(problem["queries"]))
            )
            slept[context_id] = worker_passes(router, stored(problem, passes, 1), passes)
            if slept[context_id]:
                store.queue_sleep(tenant, context_id, record.version)
                job = store.claim_job()
                assert job is not None
                learned = stored(problem, passes, 1)
                store.finish_job(
                    job, LearnedRecord("notes", learned.anticipated or [], 200 * slept[context_id])
                )
        store.close()
        return slept

    def ask(
        self, client: object, world: dict, table: ReplayTable, i: int
    ) -> tuple[str, str | None]:
        context_id = str(table.contexts[table.context_index[i]])
        problem = world["contexts"][context_id]
        question = next(q["question"] for q in problem["queries"] if q["id"] == table.query_ids[i])
        raw = client.chat.completions.with_raw_response.create(  # type: ignore[attr-defined]
            model="m",
            messages=[
                {"role": "system", "content": problem["context"]},
                {"role": "user", "content": question},
            ],
            extra_headers={"X-Sleeptime-Context": context_id, "X-Sleeptime-Routing": "policy"},
        )
        self.request_ids.append(raw.headers["x-request-id"])
        return raw.headers["x-sleeptime-route"], raw.headers.get("x-sleeptime-rung")

    @staticmethod
    def answer(request: Recorded, world: dict, i: int, asked: list) -> Reply:
        table: ReplayTable = world["table"]
        messages = request.json["messages"]
        k = int(any(NOTES_HINT in str(m.get("content")) for m in messages))
        last = str(messages[-1]["content"])
        r = next(j for j in range(table.rungs) if rung(j).instruction in last)
        asked.append((str(table.query_ids[i]), k, r))
        usage = usage_body(int(table.prompt[i, k, r]), int(table.completion[i, k, r]))
        number = table.answers[i, k, r]  # NaN: the table's answer held no number
        text = "I cannot tell." if np.isnan(number) else f"Answer: {number:g}"
        return completion(text, usage=usage)
