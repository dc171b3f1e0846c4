"""What PostgreSQL replicas tell each other beyond the shared tables: a job's claimer is
still at work (its lease renewed), and a context changed (a notification).

Lease renewal lets the lease be short (`sleep_lease_s`, 60 s): a live worker renews it
every third of the lease, so only a dead replica's job outlives it, and another replica
takes that job over within a minute instead of after the longest conceivable job.

Every write that changes what `get_context` answers, except a sighting's count, sends
`NOTIFY sleeptime_contexts, '<tenant>/<context_id>'` in its own transaction, so the
notification goes out on commit and never for a write that rolled back. `watch` listens
on a dedicated connection (outside the pool: LISTEN holds it) in a daemon thread and
tells a `ContextListener`. A connection that drops is reconnected; notifications sent
meanwhile are lost, so the listener hears `watching(False)` at once and `watching(True)`
once LISTEN is back, and forgets everything it held then. An idle connection is pinged,
so one that died silently is noticed within `PING_S`.
"""

from __future__ import annotations

import logging
import threading
import time
import urllib.parse
from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import Any

import psycopg
from psycopg import Connection

from router.store.base import SleepJob
from router.store.changes import ContextListener

CHANNEL = "sleeptime_contexts"
MAX_PAYLOAD = 7999  # PostgreSQL's limit on a notification's payload, in bytes
EVERYTHING = ""  # the payload of a change too long to name: forget every context
PING_S = 10.0  # an idle listening connection is checked this often
RETRY_S = 1.0  # between attempts to reconnect
log = logging.getLogger("sleeptime.store")
_RENEW = (
    "UPDATE sleep_jobs SET lease_until = EXTRACT(EPOCH FROM clock_timestamp())::float8 + %s"
    " WHERE job_id = %s AND status = 'running' AND attempts = %s"
)


def notify(db: Connection[Any], tenant: str, context_id: str) -> None:
    """Inside the transaction that changes the context: sent when it commits."""
    payload = f"{tenant}/{context_id}"
    if len(payload.encode()) > MAX_PAYLOAD:
        payload = EVERYTHING
    db.execute("SELECT pg_notify(%s, %s)", (CHANNEL, payload))


class PostgresReplicas:
    """Mixed into `PostgresStore`, whose URL, lease and pooled transactions it uses."""

    url: str
    lease_s: float
    _tx: Callable[[], AbstractContextManager[Connection[Any]]]

    def renew_lease(self, job: SleepJob) -> bool:
        """False when the claim is no longer this one: it ran out and another replica (or a
        requeue) took the job; its finish would be fenced off, so the work can stop."""
        with self._tx() as db:
            cursor = db.execute(_RENEW, (self.lease_s, job.job_id, job.attempts))
            return cursor.rowcount == 1

    def watch(self, listener: ContextListener) -> Callable[[], None]:
        """Starts telling `listener` of every context change, from a thread of its own;
        returns what stops it."""
        watcher = ContextWatch(self.url, listener)
        watcher.start()
        return watcher.stop


class ContextWatch:
    """One listening connection and its thread, for the life of a proxy."""

    def __init__(
        self,
        url: str,
        listener: ContextListener,
        *,
        ping_s: float = PING_S,
        retry_s: float = RETRY_S,
    ) -> None:
        self.url = url
        self.listener = listener
        self.ping_s = ping_s
        self.retry_s = retry_s
        self._stop = threading.Event()
        self._thread = threading.Thread(
            target=self._run, name="sleeptime-context-watch", daemon=True
        )

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        """Returns within about half a second: the thread checks between waits."""
        self._stop.set()
        self._thread.join(timeout=2.0)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self._listen()
            except psycopg.Error as exc:
                why = _without_password(str(exc).strip(), self.url)
                log.warning("context changes: lost the connection (%s); reconnecting", why)
            except Exception:  # a listener that raised: keep watching rather than go stale
                log.exception("context changes: the listener failed; reconnecting")
            self.listener.watching(False)
            self._stop.wait(self.retry_s)

    def _listen(self) -> None:
        with psycopg.connect(self.url, autocommit=True, connect_timeout=10) as db:
            db.execute(f"LISTEN {CHANNEL}")
            self.listener.watching(True)  # from here on no change goes untold
            pinged = time.monotonic()
            while not self._stop.is_set():
                for note in db.notifies(timeout=0.5):  # stop and ping are checked between
                    self._tell(note.payload)
                if time.monotonic() - pinged >= self.ping_s:
                    db.execute("SELECT 1")
                    pinged = time.monotonic()

    def _tell(self, payload: str) -> None:
        tenant, slash, context_id = payload.partition("/")
        if slash:
            self.listener.forget(tenant, context_id)
        else:
            self.listener.forget_all()


def _without_password(text: str, url: str) -> str:
    """A driver message may quote the connection string; logs never get its password."""
    password = urllib.parse.urlsplit(url).password
    if not password:
        return text
    return text.replace(password, "***").replace(urllib.parse.unquote(password), "***")
