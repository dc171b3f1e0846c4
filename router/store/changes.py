"""Context changes told as they happen: an optional capability of a shared store.

A proxy keeps context records in memory a moment (`router.proxy.context_cache`). Its own
writes drop them at once; another replica's writes reach it only through the store. A
store that can tell (`WatchesContexts`: PostgreSQL's LISTEN/NOTIFY, in
`router.store.postgres_replicas`) lets a replica keep records longer and still see
another's new version at once. SQLite has one process per file: nothing to tell, and it
does not offer this.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol, runtime_checkable


class ContextListener(Protocol):
    """What a watching store calls, from a thread of its own."""

    def forget(self, tenant: str, context_id: str) -> None:
        """That context changed (committed)."""
        ...

    def forget_all(self) -> None:
        """Some context changed, too long to name."""
        ...

    def watching(self, live: bool) -> None:
        """True: every change from now on is told (what was held before may be stale);
        False: changes may go untold until True again."""
        ...


@runtime_checkable
class WatchesContexts(Protocol):
    def watch(self, listener: ContextListener) -> Callable[[], None]:
        """Starts telling `listener`; returns what stops it."""
        ...
