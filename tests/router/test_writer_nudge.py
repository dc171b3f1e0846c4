"""`BackgroundWriter.nudge`: the sink runs for work it finds elsewhere (a journal), once a burst."""

from __future__ import annotations

import threading
from collections.abc import Sequence

from router.store.writer import BackgroundWriter


def test_a_nudge_runs_the_sink_with_an_empty_batch() -> None:
    batches: list[list[int]] = []
    writer: BackgroundWriter[int] = BackgroundWriter(lambda b: batches.append(list(b)))
    writer.start()
    writer.nudge()
    assert writer.flush()
    writer.close()
    assert batches == [[]]


def test_a_burst_of_nudges_runs_the_sink_once() -> None:
    batches: list[list[int]] = []
    writer: BackgroundWriter[int] = BackgroundWriter(lambda b: batches.append(list(b)))
    for _ in range(100):
        writer.nudge()
    writer.put(1)
    writer.start()
    assert writer.flush()
    writer.close()
    assert batches == [[1]]


def test_a_nudge_during_the_sink_runs_it_again() -> None:
    """What a nudge announces after the thread took its batch must not wait for another item."""
    running, release = threading.Event(), threading.Event()
    batches: list[list[int]] = []

    def sink(batch: Sequence[int]) -> None:
        batches.append(list(batch))
        running.set()
        release.wait(5)

    writer: BackgroundWriter[int] = BackgroundWriter(sink, linger_s=0.0)
    writer.start()
    writer.nudge()
    assert running.wait(5)
    writer.nudge()
    release.set()
    assert writer.flush()
    writer.close()
    assert batches == [[], []]


def test_a_nudge_a_full_queue_dropped_leaves_later_nudges_working() -> None:
    entered, gate = threading.Event(), threading.Event()
    batches: list[list[int]] = []

    def sink(batch: Sequence[int]) -> None:
        entered.set()
        gate.wait(5)
        batches.append(list(batch))

    writer: BackgroundWriter[int] = BackgroundWriter(sink, max_queue=1, linger_s=0.0)
    writer.start()
    writer.put(0)
    assert entered.wait(5)  # the thread holds item 0 in the sink
    writer.put(1)  # fills the queue
    writer.nudge()  # dropped: the queued item runs the sink anyway
    gate.set()
    assert writer.flush()
    writer.nudge()
    assert writer.flush()
    writer.close()
    assert batches == [[0], [1], []]
