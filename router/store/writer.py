"""Writes off the request's critical path: a bounded queue drained by one thread.

A request only appends to a queue (microseconds); the thread takes whatever
has accumulated and hands it to `sink` as one batch, so a burst of requests
costs one transaction instead of one each. The queue is bounded so a stalled
disk cannot grow memory without limit: when it is full the item is dropped and
counted (`dropped`), because failing or slowing a user's request to keep a
record is the wrong trade. `close()` drains what is queued before returning.

`nudge()` wakes the thread without an item: the sink then runs (with an empty
batch if nothing else is queued) for work it finds elsewhere, such as request
records in a journal on disk (`router.store.journal`), which survive a crash
that this queue does not.
"""

from __future__ import annotations

import contextlib
import logging
import queue
import threading
import time
from collections.abc import Callable, Sequence
from typing import Generic, TypeVar

T = TypeVar("T")
log = logging.getLogger("sleeptime.store")
_STOP = object()
_NUDGE = object()


class BackgroundWriter(Generic[T]):
    def __init__(
        self,
        sink: Callable[[Sequence[T]], None],
        *,
        max_queue: int = 10_000,
        max_batch: int = 500,
        linger_s: float = 0.05,
        name: str = "sleeptime-writer",
    ) -> None:
        self.dropped = 0
        self.failed_batches = 0
        self._sink = sink
        self._max_batch = max_batch
        self._linger_s = linger_s
        self._queue: queue.Queue[object] = queue.Queue(max_queue)
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._started = False
        self._nudged = False  # a nudge is queued and not yet taken

    def start(self) -> BackgroundWriter[T]:
        if not self._started:
            self._started = True
            self._thread.start()
        return self

    def put(self, item: T) -> bool:
        """Never blocks; False (and counted) when the queue is full."""
        try:
            self._queue.put_nowait(item)
            return True
        except queue.Full:
            self.dropped += 1
            return False

    def nudge(self) -> None:
        """Never blocks: the sink runs soon, with whatever is queued by then. A burst of nudges
        costs one queue append: only the first after the thread's last take queues one."""
        if self._nudged:
            return
        self._nudged = True
        with contextlib.suppress(queue.Full):  # full: the thread has a batch to take anyway
            self._queue.put_nowait(_NUDGE)

    def flush(self, timeout_s: float = 5.0) -> bool:
        """Waits until everything put so far reached the sink; False on timeout."""
        done = threading.Event()
        try:
            self._queue.put(done, timeout=timeout_s)
        except queue.Full:
            return False
        return done.wait(timeout_s)

    def close(self, timeout_s: float = 10.0) -> None:
        if self._started and self._thread.is_alive():
            self._queue.put(_STOP, timeout=timeout_s)
            self._thread.join(timeout_s)

    def _run(self) -> None:
        stopping = False
        while not stopping:
            batch, markers, stopping, nudged = self._take()
            if batch or nudged:
                self._write(batch)
            for marker in markers:
                marker.set()

    def _take(self) -> tuple[list[T], list[threading.Event], bool, bool]:
        """Blocks for the first item, lingers so that more can join it, then takes what is
        there, up to max_batch. The linger matters more than it looks: each batch holds the
        GIL for a moment, and the event loop can wait up to the switch interval (5 ms) for it,
        so one wake-up per batch instead of per request keeps that out of the p99 latency."""
        items = [self._queue.get()]
        if self._linger_s and not isinstance(items[0], threading.Event) and items[0] is not _STOP:
            time.sleep(self._linger_s)
        while len(items) < self._max_batch:
            try:
                items.append(self._queue.get_nowait())
            except queue.Empty:
                break
        nudged, self._nudged = self._nudged, False  # before the sink runs: later nudges count
        markers = [i for i in items if isinstance(i, threading.Event)]
        batch = [i for i in items if i is not _STOP and i is not _NUDGE]
        batch = [i for i in batch if not isinstance(i, threading.Event)]
        return batch, markers, any(i is _STOP for i in items), nudged  # type: ignore[return-value]

    def _write(self, batch: list[T]) -> None:
        try:
            self._sink(batch)
        except Exception:  # a bad batch must not kill the thread that writes every later one
            self.failed_batches += 1
            log.exception("store writer: a batch of %d items was not written", len(batch))
