"""The sleep-time worker: thinks about queued contexts while the upstream is idle.

One asyncio task takes jobs from the store's persisted queue, one at a time,
and runs their sleep-time passes (`router.sleep.sleep_pass`, synchronous, over
`router.upstream.OpenAIBackend`) in a daemon thread, so the event loop keeps
serving users and a shutdown never waits for a pass to finish: a job cut short
stays "running" in the store and is queued again at the next start.

Users come first. A pass starts only while `is_idle()` holds (by default: no
test-time request in flight), and the worker checks again between passes. A pass
already running yields too: a user request that begins calls `preempt()`, the pass
stops at its next streamed delta and closes its upstream call (`sleep.PassPreempted`),
and the same pass runs again once the proxy is idle; the job stays claimed, neither
failed nor retried, and its finished passes are kept. A
failing pass marks its job (and context) "failed" with the reason; it never
reaches a user's request, which runs on its own code path.

How much to think about a context is the policy's call: `budget(context)` returns a
`SleepBudget` (the configured passes, or a policy's probe pass), and with a policy,
`passes_after_probe(context, learned)` says after the first pass how many passes the
context gets in all, as replay charges them (`policies.base.Policy.sleep_passes`). An
adaptive budget (`sleep_adaptive`) stops a context's passes once its answers are settled
(`router.sleep_votes.settled`); `on_finished` is told the passes spent.

A claimed job is leased (on a shared store, another replica takes it over once the lease
ran out): while its passes run, or wait for users, the worker renews the lease every
`renew_every_s` (a third of `sleep_lease_s`). A renewal that finds the claim taken back
(this replica stalled past its lease) stops the pass at its next delta and leaves the job
to its new claimer, unfinished here: outcome "lost".
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import threading
from collections.abc import Awaitable, Callable
from functools import partial
from typing import NamedTuple, TypeVar

from router.answer_formats import of_context
from router.sleep import (
    ChatBackend,
    LearnedContext,
    PassPreempted,
    PassResult,
    SleepBudget,
    learned_context,
    sleep_pass,
)
from router.store.base import ContextRecord, LearnedRecord, SleepJob, Store

T = TypeVar("T")
SleepBudgetFn = Callable[[ContextRecord], SleepBudget]
# After the first pass: how many passes in all (a policy's sleep decision on what it learned).
PassesAfterProbe = Callable[[ContextRecord, LearnedContext], int]
log = logging.getLogger("sleeptime.worker")


class ClaimLost(Exception):
    """The job's claim was taken back while its passes ran."""


class SleepUsage(NamedTuple):
    """What a finished job's passes spent upstream, priced as sleep-time work is."""

    prompt_tokens: int = 0
    completion_tokens: int = 0
    passes: int = 0  # the passes the learned context was built from (adaptive: often fewer)


def fixed_budget(passes: int = 1, max_tokens: int = 768, prompt: str = "solve") -> SleepBudgetFn:
    return fixed_budget_of(SleepBudget(passes=passes, max_tokens=max_tokens, prompt=prompt))


def fixed_budget_of(budget: SleepBudget) -> SleepBudgetFn:
    return lambda context: budget


class SleepWorker:
    def __init__(
        self,
        store: Store,
        backend: ChatBackend,
        model: str | Callable[[], Awaitable[str]],
        *,
        is_idle: Callable[[], bool] = lambda: True,
        budget: SleepBudgetFn | None = None,
        passes_after_probe: PassesAfterProbe | None = None,
        poll_s: float = 0.5,
        renew_every_s: float = 20.0,
        on_finished: Callable[[SleepJob, str, SleepUsage], None] = lambda job, outcome, use: None,
    ) -> None:
        self.store = store
        self.backend = backend
        self.budget = budget or fixed_budget()
        self.passes_after_probe = passes_after_probe
        self.is_idle = is_idle
        self.poll_s = poll_s
        self.renew_every_s = max(renew_every_s, 0.01)  # a lease set to 0 must not spin
        self.on_finished = on_finished
        self._model = model
        self._wake: asyncio.Event | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._task: asyncio.Task[None] | None = None
        self._thread = 0
        self._preempt = threading.Event()  # set by a user request; the pass checks it
        self.preempted = 0  # passes cut short for users, and run again

    def start(self) -> asyncio.Task[None]:
        self._bind()
        self._task = asyncio.create_task(self.run(), name="sleeptime-sleep-worker")
        return self._task

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None

    def wake(self) -> None:
        """Safe from any thread: a job was queued or the upstream may have become idle.
        From the loop's own thread (every request's end) it costs no syscall."""
        if self._loop is None or self._wake is None or self._loop.is_closed():
            return
        if threading.get_ident() == self._thread:
            self._wake.set()
        else:
            self._loop.call_soon_threadsafe(self._wake.set)

    def preempt(self) -> None:
        """A user request began: the pass in flight stops at its next delta. Any thread."""
        self._preempt.set()

    async def run(self) -> None:
        self._bind()
        while True:
            await self.until_idle()
            try:
                job = self.store.claim_job()
                if job is not None:
                    await self.process(job)
                    continue
            except Exception:  # a store hiccup: try again later rather than stop sleeping
                log.exception("sleep-time worker: the store failed; trying again later")
            await self._nap()

    async def process(self, job: SleepJob) -> str:
        """Returns the outcome: "done", "failed", "superseded" (a newer version exists) or
        "lost" (the claim was taken back while the passes ran)."""
        context = self.store.get_context(job.tenant, job.context_id)
        if context is None or context.version != job.version or not context.text.strip():
            self.store.fail_job(job, "superseded: the context changed or has no text")
            return self._finished(job, "superseded", SleepUsage())
        lost = threading.Event()
        renewing = asyncio.create_task(self._renew(job, lost), name="sleeptime-lease-renewal")
        try:
            learned = await self._sleep(context, lost)
        except ClaimLost:
            return self._lost(job)
        except Exception as exc:  # any failure of sleep-time work stays here
            log.warning("sleep-time job %s failed: %r", job.job_id, exc)
            self.store.fail_job(job, f"{type(exc).__name__}: {exc}")
            return self._finished(job, "failed", SleepUsage())
        finally:
            renewing.cancel()
        if lost.is_set():  # after the last pass: the result is the new claimer's to store
            return self._lost(job)
        self.store.finish_job(job, _stored(learned))
        usage = SleepUsage(learned.prompt_tokens, learned.completion_tokens, learned.passes)
        return self._finished(job, "done", usage)

    async def until_idle(self) -> None:
        self._bind()
        while not self.is_idle():
            await self._nap()

    async def _renew(self, job: SleepJob, lost: threading.Event) -> None:
        """Until cancelled (the job ended) or the claim turns out lost."""
        while True:
            await asyncio.sleep(self.renew_every_s)
            try:
                if not self.store.renew_lease(job):
                    lost.set()
                    return
            except Exception:  # a store hiccup: the lease may still hold at the next try
                log.exception("sleep-time job %s: renewing its lease failed", job.job_id)

    def _lost(self, job: SleepJob) -> str:
        log.warning(
            "sleep-time job %s: its claim was taken back; left to the new claimer", job.job_id
        )
        return self._finished(job, "lost", SleepUsage())

    async def _sleep(self, context: ContextRecord, lost: threading.Event) -> LearnedContext:
        budget = self.budget(context)
        model = await self._model_name()
        fmt = of_context(context)  # its sleep prompt, how its answers are read and voted
        passes: list[PassResult] = []
        wanted = budget.passes
        while len(passes) < wanted:
            await self.until_idle()  # yield to users between passes
            self._preempt.clear()  # no await since the idle check: no request began since
            if lost.is_set():
                raise ClaimLost
            try:
                one = await _in_daemon_thread(
                    partial(
                        sleep_pass,
                        stop=lambda: self._preempt.is_set() or lost.is_set(),
                        fmt=fmt,
                        questions=budget.reasked(passes, fmt),
                    ),
                    self.backend,
                    model,
                    context.text,
                    len(passes),
                    budget,
                )
            except PassPreempted as cut:
                if lost.is_set():
                    raise ClaimLost from cut
                self.preempted += 1
                log.info("sleep-time pass %d yielded to a user request: %s", len(passes), cut)
                continue  # the same pass again, once the proxy is idle
            passes.append(one)
            if budget.stops_after(passes, fmt):  # adaptive: the answers are settled
                break
            if len(passes) == 1 and self.passes_after_probe is not None:
                # The policy's own budget, now that the probe's artifacts can be scored.
                probe = learned_context(passes, fmt, context.text)
                wanted = max(1, self.passes_after_probe(context, probe))
        return learned_context(passes, fmt, context.text)

    async def _model_name(self) -> str:
        return self._model if isinstance(self._model, str) else await self._model()

    async def _nap(self) -> None:
        assert self._wake is not None
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._wake.wait(), self.poll_s)
        self._wake.clear()

    def _bind(self) -> None:
        if self._wake is None:
            self._loop = asyncio.get_running_loop()
            self._thread = threading.get_ident()
            self._wake = asyncio.Event()

    def _finished(self, job: SleepJob, outcome: str, usage: SleepUsage) -> str:
        self.on_finished(job, outcome, usage)
        return outcome


def _stored(learned: LearnedContext) -> LearnedRecord:
    anticipated = [dataclasses.asdict(a) for a in learned.anticipated]
    return LearnedRecord(learned.text, anticipated, learned.sleep_tokens, learned.truncated_passes)


async def _in_daemon_thread(fn: Callable[..., T], *args: object) -> T:
    """Like asyncio.to_thread, but a daemon thread: interpreter exit never waits for it."""
    loop = asyncio.get_running_loop()
    future: asyncio.Future[T] = loop.create_future()

    def settle(result: T | None, error: BaseException | None) -> None:
        if future.done():
            return
        if error is not None:
            future.set_exception(error)
        else:
            future.set_result(result)  # type: ignore[arg-type]

    def target() -> None:
        try:
            result, error = fn(*args), None
        except BaseException as exc:
            result, error = None, exc
        with contextlib.suppress(RuntimeError):  # the loop is gone: nobody waits any more
            loop.call_soon_threadsafe(settle, result, error)

    threading.Thread(target=target, name="sleeptime-sleep-pass", daemon=True).start()
    return await future
