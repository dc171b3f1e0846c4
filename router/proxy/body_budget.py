"""A bound on the request body bytes buffered at once, across every connection.

Each body is within `max_body_bytes`, but 40 clients uploading 8 MB at once took the
proxy's RSS from 85 to 404 MB. A reader takes its whole body's bytes from this budget in
one step before it reads (taking chunk by chunk, 40 readers each holding a part and
waiting for the rest deadlocked until their deadlines), and gives them back once the body
is parsed. A reader the budget cannot serve waits, its client's upload stalled in TCP's
window, which costs the proxy nothing. Waiters are served first come, first served, so a
big body is not starved by a stream of smaller ones.
"""

from __future__ import annotations

import asyncio
from collections import deque


class ByteBudget:
    def __init__(self, total: int) -> None:
        self.total = total
        self.free = total
        self._waiting: deque[tuple[int, asyncio.Future[None]]] = deque()

    async def take(self, size: int) -> int:
        """What was taken, to give back: `size` clamped to the whole budget (such a chunk
        waits until the budget is all free)."""
        size = min(size, self.total)
        if not self._waiting and size <= self.free:
            self.free -= size
            return size
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        entry = (size, future)
        self._waiting.append(entry)
        try:
            await future
        except asyncio.CancelledError:
            if future.done() and not future.cancelled():
                self.give(size)  # granted just as its waiter gave up
            elif entry in self._waiting:
                self._waiting.remove(entry)
                self._wake()  # the waiters behind it may fit now
            raise
        return size

    def give(self, size: int) -> None:
        self.free = min(self.total, self.free + size)
        self._wake()

    def _wake(self) -> None:
        while self._waiting and (self._waiting[0][1].done() or self._waiting[0][0] <= self.free):
            size, future = self._waiting.popleft()
            if not future.done():  # a cancelled waiter is dropped, its size not taken
                self.free -= size
                future.set_result(None)
