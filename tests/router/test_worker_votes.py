"""The worker's passes with an adaptive budget: settled contexts stop early, the passes
spent reach `on_finished`, and the stored learned context is the voted one."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from router.settings import load_settings
from router.sleep import SleepBudget
from router.store import SqliteStore
from router.upstream import ChatResult, Usage
from router.worker import SleepUsage, SleepWorker, fixed_budget_of

DOC = "Janet's ducks lay 16 eggs per day. She eats 3 and bakes with 4."


class Scripted:
    """Replies by the pass's seed (the pass index), so each job sees the same sequence."""

    def __init__(self, answers: list[str]) -> None:
        self.answers, self.seeds = answers, []

    def chat(self, messages: list[dict], *, model: str, **params: object) -> ChatResult:
        index = int(params["seed"])  # type: ignore[call-overload]
        self.seeds.append(index)
        text = f"NOTES:\n- Eggs left: 9\nQUESTIONS:\nQ: How many eggs?\nA: {self.answers[index]}"
        return ChatResult(text, "stop", Usage(100, 40), 0.01, model)


def run_job(tmp_path: Path, backend: Scripted, budget: SleepBudget) -> tuple[SqliteStore, list]:
    store = SqliteStore(tmp_path / "w.sqlite")
    record = store.register_context("t1", "a", DOC)
    store.queue_sleep("t1", "a", record.version)
    finished: list[tuple[str, SleepUsage]] = []
    worker = SleepWorker(
        store,
        backend,
        "m",
        budget=fixed_budget_of(budget),
        on_finished=lambda job, outcome, usage: finished.append((outcome, usage)),
    )

    async def drain() -> None:
        while (job := store.claim_job()) is not None:
            await worker.process(job)

    asyncio.run(drain())
    return store, finished


def test_an_adaptive_budget_stops_a_settled_context_after_two_passes(tmp_path: Path) -> None:
    backend = Scripted(["9"] * 6)
    store, finished = run_job(tmp_path, backend, SleepBudget(passes=6, adaptive=True))
    assert backend.seeds == [0, 1]
    assert finished == [("done", SleepUsage(200, 80, 2))]
    context = store.get_context("t1", "a")
    assert context is not None and context.sleep_tokens == 80
    assert context.learned == "Notes:\n- Eggs left: 9\n- Q: How many eggs? A: 9"
    assert context.anticipated[0]["support"] == 2


def test_an_unsettled_context_gets_passes_until_two_agree(tmp_path: Path) -> None:
    backend = Scripted(["8", "9", "10", "10", "10"])
    store, finished = run_job(tmp_path, backend, SleepBudget(passes=5, adaptive=True))
    assert backend.seeds == [0, 1, 2, 3] and finished[0][1].passes == 4
    context = store.get_context("t1", "a")
    assert context is not None and context.anticipated[0]["answer"] == "10"
    assert context.anticipated[0]["agreement"] == 0.5


def test_a_fixed_budget_runs_every_pass(tmp_path: Path) -> None:
    backend = Scripted(["9"] * 3)
    _, finished = run_job(tmp_path, backend, SleepBudget(passes=3))
    assert backend.seeds == [0, 1, 2] and finished[0][1].passes == 3


@pytest.mark.parametrize(
    ("env", "field", "on"),
    [("SLEEPTIME_SLEEP_ADAPTIVE", "sleep_adaptive", "yes"),
     ("SLEEPTIME_SLEEP_REASK", "sleep_reask", "true")],
)  # fmt: skip
def test_the_sleep_voting_settings_are_off_unless_set(
    monkeypatch: pytest.MonkeyPatch, env: str, field: str, on: str
) -> None:
    monkeypatch.delenv(env, raising=False)
    monkeypatch.delenv("SLEEPTIME_CONFIG", raising=False)
    assert getattr(load_settings(), field) is False
    monkeypatch.setenv(env, on)
    assert getattr(load_settings(), field) is True
