"""A sleep-time pass that stops for users: streamed, cut at the next delta, its call closed."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from router.sleep import PassPreempted, SleepBudget, sleep_pass
from router.store import SqliteStore
from router.upstream import StreamDelta, Usage
from router.worker import SleepWorker, fixed_budget

DOC = "Janet's ducks lay 16 eggs per day. She eats 3 for breakfast and bakes with 4."
USAGE = Usage(100, 40)
NOTES = ["NOTES:\n", "- Eggs left each day: 16 - 3 - 4 = 9\n", "QUESTIONS:\n", "Q: Left?\n", "A: 9"]


class StreamingSleeper:
    """A backend that streams its answer; `on_delta(i)` runs before delta i is yielded, and
    `closed` counts the streams closed before their end (the call given up)."""

    def __init__(self, usage: Usage | None = USAGE) -> None:
        self.usage = usage
        self.calls: list[dict[str, Any]] = []
        self.closed = 0
        self.finished = 0
        self.on_delta = lambda call, index: None

    def chat(self, messages: list[dict], *, model: str, **params: Any) -> Any:
        raise AssertionError("a pass given `stop` streams")

    def stream(self, messages: list[dict], *, model: str, **params: Any) -> Iterator[StreamDelta]:
        self.calls.append(params)
        return self._deltas(len(self.calls))

    def _deltas(self, call: int) -> Iterator[StreamDelta]:
        try:
            for index, text in enumerate(NOTES):
                self.on_delta(call, index)
                yield StreamDelta(text)
            yield StreamDelta("", "stop", self.usage)
            self.finished += 1
        except GeneratorExit:
            self.closed += 1
            raise


def test_a_pass_reads_the_stream_to_its_end_when_not_stopped() -> None:
    backend = StreamingSleeper()
    result = sleep_pass(backend, "m", DOC, 0, SleepBudget(max_tokens=99), stop=lambda: False)
    assert result.raw == "".join(NOTES) and result.parsed.anticipated[0].answer == "9"
    assert (result.prompt_tokens, result.completion_tokens, result.truncated) == (100, 40, False)
    assert backend.calls == [{"max_tokens": 99, "temperature": 0.0, "seed": 0}]
    assert (backend.finished, backend.closed) == (1, 0)


def test_a_stream_without_usage_is_estimated_not_free() -> None:
    """An upstream that ignores include_usage: the pass's tokens are estimated (they are
    charged to the context's key), never counted as 0."""
    result = sleep_pass(StreamingSleeper(usage=None), "m", DOC, 0, stop=lambda: False)
    assert result.prompt_tokens > 50
    assert result.completion_tokens == -(-len("".join(NOTES)) // 4)


def test_a_stopped_pass_closes_its_stream_at_the_next_delta() -> None:
    backend = StreamingSleeper()
    stop = threading.Event()
    backend.on_delta = lambda call, index: stop.set() if index == 2 else None
    with pytest.raises(PassPreempted, match="after 2 deltas"):
        sleep_pass(backend, "m", DOC, 0, stop=stop.is_set)
    assert (backend.finished, backend.closed) == (0, 1)


def test_a_pass_stopped_before_it_began_sends_nothing() -> None:
    backend = StreamingSleeper()
    with pytest.raises(PassPreempted):
        sleep_pass(backend, "m", DOC, 0, stop=lambda: True)
    assert backend.calls == []


def test_without_stop_a_pass_makes_one_whole_call() -> None:
    class ChatOnly:
        def chat(self, messages: list[dict], *, model: str, **params: Any) -> Any:
            from router.upstream import ChatResult

            return ChatResult("".join(NOTES), "stop", Usage(10, 4), 0.01, model)

    assert sleep_pass(ChatOnly(), "m", DOC, 0, stop=lambda: False).completion_tokens == 4


def test_the_worker_runs_a_preempted_pass_again_and_keeps_the_job(tmp_path: Path) -> None:
    """Pass 1 of 2 is cut by a user request: the job is neither failed nor retried; the
    same pass runs again when idle, and the job ends done with both passes."""
    store = SqliteStore(tmp_path / "w.sqlite")
    store.register_context("t1", "doc", DOC)
    store.queue_sleep("t1", "doc", 1)
    backend = StreamingSleeper()
    worker = SleepWorker(store, backend, "m", budget=fixed_budget(passes=2))

    def user_arrives(call: int, index: int) -> None:
        if call == 2 and index == 1:  # the second pass, mid-stream
            worker.preempt()

    backend.on_delta = user_arrives

    async def main() -> str:
        worker._bind()
        job = store.claim_job()
        assert job is not None
        return await worker.process(job)

    assert asyncio.run(main()) == "done"
    assert [c["seed"] for c in backend.calls] == [0, 1, 1]  # pass 1 ran again
    assert (backend.closed, backend.finished, worker.preempted) == (1, 2, 1)
    context = store.get_context("t1", "doc")
    assert context is not None and context.sleep_status == "done"
    assert store.job_counts() == {"done": 1}
    assert context.sleep_tokens == 80  # the two passes that finished; the cut one is not kept
