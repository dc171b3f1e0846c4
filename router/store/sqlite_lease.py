"""The SQLite store's side of the lease contract (`Store.renew_lease`).

One process owns a SQLite file, so no other replica can take a running job over and a
claim has no lease to extend. A claim still ends when its job ends or when a restart puts
it back (`requeue_running`): renewal answers whether the claim is still this one, as it
does on PostgreSQL, so the worker behaves the same on both.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable

from router.store.base import SleepJob

_STILL_OURS = "SELECT 1 FROM sleep_jobs WHERE job_id = ? AND status = 'running' AND attempts = ?"


class SqliteLease:
    """Mixed into `SqliteStore`, whose connections it uses."""

    _read: Callable[[], sqlite3.Connection]

    def renew_lease(self, job: SleepJob) -> bool:
        row = self._read().execute(_STILL_OURS, (job.job_id, job.attempts)).fetchone()
        return row is not None
