"""A thread pool that Ctrl-C stops within seconds, for the commands that call an LLM.

`with ThreadPoolExecutor(...)` waits, on any exception, for every queued item to run: a
Ctrl-C in `collect` went on for 20 s and more, calling the LLM for contexts nobody would
see. Here an exception in the caller (KeyboardInterrupt) or in an item cancels whatever
has not started and sets `stop`, which each item's own code checks before it starts a new
call; an item in flight ends with its current call.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable
from concurrent.futures import FIRST_EXCEPTION, Future, ThreadPoolExecutor, wait
from typing import TypeVar

Item = TypeVar("Item")
Result = TypeVar("Result")


class Stopped(Exception):
    """Raised by an item's code instead of starting new work once the run is stopping."""


def check(stop: threading.Event) -> None:
    """Call before each LLM call an item makes."""
    if stop.is_set():
        raise Stopped


def run_all(
    work: Callable[[Item], Result],
    items: Iterable[Item],
    *,
    workers: int,
    stop: threading.Event,
    on_stop: Callable[[int, int], None] = lambda done, total: None,
) -> list[Result]:
    """`work(item)` for every item, `workers` at a time, results in order. On an exception,
    here or in an item: `stop` is set, queued items are dropped, `on_stop(done, total)` is
    told how many items had finished, and the exception is raised."""
    pool = ThreadPoolExecutor(max_workers=max(1, workers))
    futures = [pool.submit(work, item) for item in items]
    try:
        wait(futures, return_when=FIRST_EXCEPTION)
        for future in futures:  # the first that failed, not the first in order: stop now
            if future.done() and future.exception() is not None:
                future.result()
        return [f.result() for f in futures]
    except BaseException:
        stop.set()
        pool.shutdown(wait=False, cancel_futures=True)
        on_stop(sum(_finished(f) for f in futures), len(futures))
        raise
    finally:
        pool.shutdown(wait=False)


def _finished(future: Future) -> bool:
    return future.done() and not future.cancelled() and future.exception() is None
