"""The sleep-time worker renews its job's lease while the passes run (SQLite here; the
same on PostgreSQL in test_replica_changes_postgres.py): a claim taken back stops the
pass at its next delta and leaves the job, unfinished, to its new claimer."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

from test_sleep_pass_stop import StreamingSleeper
from test_store import LEARNED

from router.store import SqliteStore
from router.store.base import SleepJob
from router.worker import SleepUsage, SleepWorker, fixed_budget

DOC = "Janet's ducks lay 16 eggs per day. She eats 3 for breakfast and bakes with 4."


class CountingStore(SqliteStore):
    """Counts renewals; `failing` makes them raise, as a store that hiccups does."""

    renewals = 0
    failing = False

    def renew_lease(self, job: SleepJob) -> bool:
        self.renewals += 1
        if self.failing:
            raise OSError("the store is away")
        return super().renew_lease(job)


def queued(path: Path) -> CountingStore:
    store = CountingStore(path)
    store.register_context("t1", "doc", DOC)
    store.queue_sleep("t1", "doc", 1)
    return store


def slow_sleeper(delta_s: float) -> StreamingSleeper:
    backend = StreamingSleeper()
    backend.on_delta = lambda call, index: time.sleep(delta_s)
    return backend


def run(worker: SleepWorker, store: SqliteStore) -> str:
    job = store.claim_job()
    assert job is not None
    return asyncio.run(worker.process(job))


def test_a_job_renews_its_lease_while_its_pass_runs(tmp_path: Path) -> None:
    store = queued(tmp_path / "w.sqlite")
    backend = slow_sleeper(0.05)  # a pass of 0.25 s
    worker = SleepWorker(store, backend, "m", renew_every_s=0.02)
    assert run(worker, store) == "done"
    assert store.renewals >= 4
    renewed = store.renewals
    time.sleep(0.1)
    assert store.renewals == renewed  # the job ended: renewal stopped with it


def test_a_claim_taken_back_stops_the_pass_and_leaves_the_job(tmp_path: Path) -> None:
    store = queued(tmp_path / "w.sqlite")
    restarted = SqliteStore(tmp_path / "w.sqlite")  # another process on the file, after a restart
    taken: list[SleepJob | None] = []
    finished: list[tuple[str, SleepUsage]] = []

    def take_back(call: int, index: int) -> None:
        if index == 1 and not taken:
            restarted.requeue_running()
            taken.append(restarted.claim_job())
        time.sleep(0.05)

    backend = StreamingSleeper()
    backend.on_delta = take_back
    worker = SleepWorker(
        store,
        backend,
        "m",
        renew_every_s=0.02,
        budget=fixed_budget(passes=2),
        on_finished=lambda job, outcome, usage: finished.append((outcome, usage)),
    )
    assert run(worker, store) == "lost"
    assert (backend.closed, backend.finished, len(backend.calls)) == (1, 0, 1)  # cut mid-stream
    assert finished == [("lost", SleepUsage())]  # nothing charged: the new claimer does it
    assert worker.preempted == 0  # not a user's preemption: the pass is not run again
    assert store.job_counts() == {"running": 1}
    new_claim = taken[0]
    assert new_claim is not None and store.renew_lease(new_claim)
    restarted.finish_job(new_claim, LEARNED)
    assert store.get_context("t1", "doc").learned == LEARNED.text  # type: ignore[union-attr]
    restarted.close()


def test_a_renewal_that_fails_does_not_end_the_job(tmp_path: Path) -> None:
    store = queued(tmp_path / "w.sqlite")
    store.failing = True
    worker = SleepWorker(store, slow_sleeper(0.03), "m", renew_every_s=0.02)
    assert run(worker, store) == "done"
    assert store.renewals >= 2 and store.job_counts() == {"done": 1}
