"""The sleep-time worker with a fake backend: idle-only, once per version, failures contained."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable
from pathlib import Path

from fake_upstream import FakeUpstream, completion
from fastapi.testclient import TestClient
from proxy_fakes import DEFAULT_KEY, SLEEP_REPLY, FakeSleepBackend

from router.errors import UpstreamTimeout
from router.proxy.routing import EnrichedRouter
from router.proxy.tenants import Tenants
from router.store import SqliteStore
from router.upstream import ChatResult, Usage
from router.worker import SleepWorker, fixed_budget

DOC = "Janet's ducks lay 16 eggs per day. She eats 3 for breakfast and bakes with 4."


def queued_store(tmp_path: Path, *names: str) -> SqliteStore:
    store = SqliteStore(tmp_path / "w.sqlite")
    for name in names:
        record = store.register_context("t1", name, f"{DOC} ({name})")
        store.queue_sleep("t1", name, record.version)
    return store


def drain(worker: SleepWorker, store: SqliteStore) -> list[str]:
    """Processes every queued job now, in order; returns the outcomes."""

    async def main() -> list[str]:
        outcomes = []
        while (job := store.claim_job()) is not None:
            outcomes.append(await worker.process(job))
        return outcomes

    return asyncio.run(main())


def test_learns_and_stores_notes_and_anticipated(tmp_path: Path, sleeper: FakeSleepBackend) -> None:
    store = queued_store(tmp_path, "a")
    outcomes: list[tuple[str, int]] = []
    worker = SleepWorker(
        store, sleeper, "m", on_finished=lambda j, o, u: outcomes.append((o, u.completion_tokens))
    )
    assert drain(worker, store) == ["done"]
    context = store.get_context("t1", "a")
    assert (
        context is not None and context.has_learned and "16 - 3 - 4 = 9" in (context.learned or "")
    )
    assert context.anticipated and context.anticipated[0]["answer"] == "9"
    assert outcomes == [("done", 40)] and DOC in sleeper.calls[0]["messages"][-1]["content"]


def test_k_passes_per_the_budget(tmp_path: Path, sleeper: FakeSleepBackend) -> None:
    store = queued_store(tmp_path, "a")
    drain(SleepWorker(store, sleeper, "m", budget=fixed_budget(passes=3, max_tokens=99)), store)
    assert [c["seed"] for c in sleeper.calls] == [0, 1, 2]
    assert {c["max_tokens"] for c in sleeper.calls} == {99}
    assert store.get_context("t1", "a").sleep_tokens == 120  # type: ignore[union-attr]


def test_a_policy_sets_the_passes_after_its_probe(
    tmp_path: Path, sleeper: FakeSleepBackend
) -> None:
    """The probe pass runs, the policy reads its artifacts, the worker runs what it asks."""
    store = queued_store(tmp_path, "wanted", "declined")
    seen: list[tuple[str, int]] = []

    def passes_after_probe(context, learned) -> int:
        seen.append((context.context_id, learned.passes))
        return 3 if context.context_id == "wanted" else 0

    worker = SleepWorker(
        store,
        sleeper,
        "m",
        budget=fixed_budget(passes=1),
        passes_after_probe=passes_after_probe,
    )
    assert drain(worker, store) == ["done", "done"]
    assert seen == [("wanted", 1), ("declined", 1)]  # asked once, after the first pass
    assert [c["seed"] for c in sleeper.calls] == [0, 1, 2, 0]  # 3 passes, then the probe alone
    assert store.get_context("t1", "wanted").sleep_tokens == 120  # type: ignore[union-attr]


def test_a_policy_that_never_sleeps_runs_no_pass(tmp_path: Path, sleeper: FakeSleepBackend) -> None:
    from policies import TestTimeOnly
    from router.policy_router import PolicyRouter
    from router.sleep import SleepBudget

    store = queued_store(tmp_path, "a")
    router = PolicyRouter(TestTimeOnly(), {}, lambda texts: None)  # type: ignore[arg-type]
    worker = SleepWorker(store, sleeper, "m", budget=router.sleep_budget(SleepBudget()))
    drain(worker, store)
    assert sleeper.calls == []


def test_passes_cut_off_by_their_budget_are_counted(
    tmp_path: Path, sleeper: FakeSleepBackend
) -> None:
    store = queued_store(tmp_path, "a")
    sleeper.enqueue(ChatResult(SLEEP_REPLY, "length", Usage(100, 64), 0.01, "m"), SLEEP_REPLY)
    drain(SleepWorker(store, sleeper, "m", budget=fixed_budget(passes=2, max_tokens=64)), store)
    context = store.get_context("t1", "a")
    assert context is not None and context.truncated_passes == 1


def test_failure_marks_failed_with_reason(tmp_path: Path, sleeper: FakeSleepBackend) -> None:
    store = queued_store(tmp_path, "a", "b")
    sleeper.enqueue(UpstreamTimeout("upstream did not answer in time"), SLEEP_REPLY)
    assert drain(SleepWorker(store, sleeper, "m"), store) == ["failed", "done"]
    failed = store.get_context("t1", "a")
    assert failed is not None and failed.sleep_status == "failed"
    assert failed.error == "UpstreamTimeout: upstream did not answer in time"


def test_a_superseded_version_is_not_processed(tmp_path: Path, sleeper: FakeSleepBackend) -> None:
    store = queued_store(tmp_path, "a")
    job = store.claim_job()
    store.register_context("t1", "a", "a new text")
    assert job is not None
    assert asyncio.run(SleepWorker(store, sleeper, "m").process(job)) == "superseded"
    assert sleeper.calls == []


def test_runs_only_while_idle_and_never_twice(tmp_path: Path, sleeper: FakeSleepBackend) -> None:
    store = queued_store(tmp_path, "a")
    busy = threading.Event()
    busy.set()

    async def main() -> None:
        worker = SleepWorker(store, sleeper, "m", is_idle=lambda: not busy.is_set(), poll_s=0.01)
        worker.start()
        await asyncio.sleep(0.1)
        assert sleeper.calls == []  # busy: nothing ran
        busy.clear()
        worker.wake()
        for _ in range(200):
            if store.job_counts().get("done"):
                break
            await asyncio.sleep(0.01)
        assert not store.queue_sleep("t1", "a", 1)  # that version is never queued again
        await asyncio.sleep(0.05)
        await worker.stop()

    asyncio.run(main())
    assert len(sleeper.calls) == 1 and store.job_counts() == {"done": 1}


def test_waits_for_idle_between_passes(tmp_path: Path, sleeper: FakeSleepBackend) -> None:
    store = queued_store(tmp_path, "a")
    idle = threading.Event()
    idle.set()
    original = sleeper.chat

    def chat_then_get_busy(*args: object, **kwargs: object) -> object:
        idle.clear()  # a user request arrives while the first pass runs
        return original(*args, **kwargs)  # type: ignore[arg-type]

    sleeper.chat = chat_then_get_busy  # type: ignore[method-assign]

    async def main() -> None:
        worker = SleepWorker(
            store, sleeper, "m", is_idle=idle.is_set, poll_s=0.01, budget=fixed_budget(passes=2)
        )
        worker.start()
        await asyncio.sleep(0.15)
        assert len(sleeper.calls) == 1  # the second pass waits for the user
        idle.set()
        await asyncio.sleep(0.15)
        await worker.stop()

    asyncio.run(main())
    assert len(sleeper.calls) == 2 and store.job_counts() == {"done": 1}


def test_resumes_a_job_left_running_by_a_crash(
    tmp_path: Path, make_client: Callable[..., TestClient], sleeper: FakeSleepBackend
) -> None:
    store = SqliteStore(tmp_path / "sleeptime.sqlite")  # the app's default path under cache_dir
    tenant = Tenants.from_file(tmp_path / "tenant-salt").of_key(DEFAULT_KEY)  # the client's
    store.register_context(tenant, "doc", DOC)
    store.queue_sleep(tenant, "doc", 1)
    assert store.claim_job() is not None  # ... and the process died here
    store.close()
    client = make_client(sleep_enabled=True)
    view = wait_for_status(client, "doc", "done")
    assert view["learned_context"] and len(sleeper.calls) == 1


def test_user_request_unharmed_by_a_failing_sleep(
    make_client: Callable[..., TestClient], fake: FakeUpstream, sleeper: FakeSleepBackend
) -> None:
    client = make_client(sleep_enabled=True)
    sleeper.enqueue(RuntimeError("the sleep backend exploded"))
    client.post("/v1/contexts", json={"id": "doc", "context": DOC})
    assert wait_for_status(client, "doc", "failed")["error"].startswith("RuntimeError")
    fake.enqueue(completion("9"))
    messages = [{"role": "system", "content": DOC}, {"role": "user", "content": "How many?"}]
    response = client.post(
        "/v1/chat/completions",
        json={"model": "m", "messages": messages},
        headers={"X-Sleeptime-Context": "doc"},
    )
    assert response.status_code == 200 and response.headers["x-sleeptime-route"] == "full"
    assert 'sleeptime_sleep_jobs_total{outcome="failed"} 1.0' in client.get("/metrics").text


def test_learned_context_enriches_the_next_request(
    make_client: Callable[..., TestClient], fake: FakeUpstream
) -> None:
    client = make_client(sleep_enabled=True, router=EnrichedRouter())
    client.post("/v1/contexts", json={"id": "doc", "context": DOC})
    view = wait_for_status(client, "doc", "done")
    fake.enqueue(completion("9"))
    messages = [
        {"role": "system", "content": DOC},
        {"role": "user", "content": "How many?"},
    ]
    response = client.post(
        "/v1/chat/completions",
        json={"model": "m", "messages": messages, "max_tokens": 5},
        headers={"X-Sleeptime-Context": "doc", "X-Sleeptime-Routing": "policy"},
    )
    assert response.headers["x-sleeptime-route"] == "enriched"
    assert response.headers["x-sleeptime-context"] == "doc"
    sent = fake.requests[-1].json
    assert sent["max_tokens"] == 5 and sent["messages"][0] == messages[0]
    assert sent["messages"][1]["role"] == "system"
    assert view["learned_context"] in sent["messages"][1]["content"]
    assert sent["messages"][2] == messages[1]


def wait_for_status(client: TestClient, context_id: str, status: str) -> dict:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        view = client.get(f"/v1/contexts/{context_id}").json()
        if view.get("status") == status:
            return view
        time.sleep(0.02)
    raise AssertionError(f"context {context_id} never reached {status}: {view}")


def test_the_proxy_stops_a_settled_context_with_sleep_adaptive(
    make_client: Callable[..., TestClient], sleeper: FakeSleepBackend
) -> None:
    """Every pass gives the same answer: settled after two of the four configured passes;
    without the setting all four run."""
    for adaptive, expected in ((True, 2), (False, 4)):
        sleeper.calls.clear()
        name = f"doc-{adaptive}"
        client = make_client(sleep_enabled=True, sleep_passes=4, sleep_adaptive=adaptive)
        client.post("/v1/contexts", json={"id": name, "context": f"{DOC} ({name})"})
        wait_for_status(client, name, "done")
        assert len(sleeper.calls) == expected


def test_with_sleep_reask_the_proxys_later_passes_answer_pass_0s_questions(
    make_client: Callable[..., TestClient], sleeper: FakeSleepBackend
) -> None:
    """Pass 1 is asked pass 0's question, numbered; without the setting it writes its own."""
    for reask in (True, False):
        sleeper.calls.clear()
        name = f"doc-reask-{reask}"
        client = make_client(sleep_enabled=True, sleep_passes=2, sleep_reask=reask)
        client.post("/v1/contexts", json={"id": name, "context": f"{DOC} ({name})"})
        wait_for_status(client, name, "done")
        second = sleeper.calls[1]["messages"][-1]["content"]
        assert ("Q1: How many eggs are left each day?" in second) is reask
