"""Every request's record, and the contexts requests showed, on their way to the store.

A record is journaled before its response leaves, so the record of an answer a client
got outlives a crash of the proxy; the background writer moves records to the store in
batches, off the event loop. Sightings (a request showed this context) go through the
same writer: counted per context, and a context seen twice is queued for sleep-time work.
So do sleep-time jobs' dollars, charged to their tenant.
"""

from __future__ import annotations

import itertools
import os
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

from router.proxy.contexts import ContextRef
from router.proxy.inflight import Waker
from router.store.base import ContextRecord, RequestRecord, Store
from router.store.journal import RecordJournal
from router.store.writer import BackgroundWriter


@dataclass(frozen=True)
class Sighting:
    """A request showed this context: counted, and queued for sleep once seen twice."""

    tenant: str
    ref: ContextRef


@dataclass(frozen=True)
class SleepCharge:
    """Dollars a finished sleep-time job spent, on the key whose context it served."""

    tenant: str
    usd: float


Item = RequestRecord | Sighting | SleepCharge


class Records:
    def __init__(
        self,
        store: Store,
        *,
        journal: RecordJournal | None = None,
        max_queue: int = 10_000,
        sleep_enabled: bool = True,
    ) -> None:
        self.store = store
        self.journal = journal  # opened: records outlive a crash; None: they wait in memory
        self.sleep_enabled = sleep_enabled
        self.worker: Waker | None = None  # set once the sleep-time worker runs
        self.writer: BackgroundWriter[Item] = BackgroundWriter(self._write, max_queue=max_queue)
        self._id_prefix = os.urandom(8).hex()
        self._ids = itertools.count()

    def new_id(self) -> str:
        """Unique across restarts (a random prefix per process) without a syscall per request."""
        return f"req-{self._id_prefix}{next(self._ids):08x}"

    def record(self, record: RequestRecord) -> None:
        """Journaled before it returns; the writer moves it to the store with its next batch.
        Without a journal, or when it fails (a full disk), the record waits in the queue."""
        if self.journal is not None and self.journal.append(record):
            self.writer.nudge()
        else:
            self.writer.put(record)

    def sighted(self, tenant: str, ref: ContextRef) -> None:
        self.writer.put(Sighting(tenant, ref))

    def charge_sleep(self, tenant: str, usd: float) -> None:
        self.writer.put(SleepCharge(tenant, usd))

    def queue_sleep(self, context: ContextRecord) -> bool:
        if not self.sleep_enabled:
            return False
        queued = self.store.queue_sleep(context.tenant, context.context_id, context.version)
        if queued and self.worker is not None:
            self.worker.wake()
        return queued

    def close(self) -> None:
        """Stops the writer, then moves what the journal still holds into the store; what a
        failing store refuses stays in the journal for the next start."""
        self.writer.close()
        if self.journal is not None:
            self.journal.close()
            self.journal.catch_up(self.store)

    # The writer thread.

    def _write(self, items: Sequence[Item]) -> None:
        """Journaled records first: they are what a crash must not lose."""
        if self.journal is not None:
            self.journal.drain(self.store)
        records = [item for item in items if isinstance(item, RequestRecord)]
        if records:
            self.store.add_records(records)
        sightings = Counter((i.tenant, i.ref.context_id) for i in items if isinstance(i, Sighting))
        refs = {(i.tenant, i.ref.context_id): i.ref for i in items if isinstance(i, Sighting)}
        for (tenant, context_id), times in sightings.items():
            self._sight(tenant, refs[tenant, context_id], times)
        for charge in (item for item in items if isinstance(item, SleepCharge)):
            self.store.add_sleep_spend(charge.tenant, charge.usd)

    def _sight(self, tenant: str, ref: ContextRef, times: int) -> None:
        context = self.store.sight_context(tenant, ref.context_id, ref.text, ref.source, times)
        if context.seen >= 2 and context.sleep_status is None and context.text.strip():
            self.queue_sleep(context)
