"""The context cache: one store read per context and TTL, dropped on change, safe on failure."""

from __future__ import annotations

import time

from router.proxy.context_cache import MAX_CACHED, ContextCache
from router.store.base import ContextRecord


def record(context_id: str, version: int = 1) -> ContextRecord:
    return ContextRecord(
        "t", context_id, version, "text", "implicit", 1, None, None, None, 0, None, 0.0
    )


class CountingStore:
    def __init__(self) -> None:
        self.reads = 0
        self.version = 1
        self.broken = False

    def get_context(self, tenant: str, context_id: str) -> ContextRecord | None:
        self.reads += 1
        if self.broken:
            raise OSError("disk I/O error")
        return None if context_id == "unknown" else record(context_id, self.version)


class Counter:
    def __init__(self) -> None:
        self.count = 0

    def inc(self) -> None:
        self.count += 1


def cache(ttl_s: float = 60.0) -> tuple[ContextCache, CountingStore, Counter]:
    store, fallbacks = CountingStore(), Counter()
    return ContextCache(store, ttl_s, fallbacks), store, fallbacks  # type: ignore[arg-type]


def test_one_read_per_context_within_the_ttl() -> None:
    contexts, store, _ = cache()
    assert contexts.lookup("t", "doc") == contexts.lookup("t", "doc") == record("doc")
    assert contexts.lookup("t", "unknown") is None and contexts.lookup("t", "unknown") is None
    assert store.reads == 2


def test_a_change_here_shows_at_once_and_others_after_the_ttl() -> None:
    contexts, store, _ = cache()
    contexts.lookup("t", "doc")
    store.version = 2
    assert contexts.lookup("t", "doc").version == 1  # changed elsewhere: within the TTL
    contexts.forget("t", "doc")
    assert contexts.lookup("t", "doc").version == 2
    short, store, _ = cache(ttl_s=0.01)
    short.lookup("t", "doc")
    time.sleep(0.02)
    short.lookup("t", "doc")
    assert store.reads == 2


def test_tenants_are_cached_apart() -> None:
    contexts, store, _ = cache()
    contexts.lookup("a", "doc")
    contexts.lookup("b", "doc")
    assert store.reads == 2


def test_a_failing_store_costs_only_the_help() -> None:
    contexts, store, fallbacks = cache()
    store.broken = True
    assert contexts.lookup("t", "doc") is None and fallbacks.count == 1
    store.broken = False
    assert contexts.lookup("t", "doc") == record("doc")  # a failure is not cached


def test_the_cache_is_bounded() -> None:
    contexts, store, _ = cache()
    for i in range(MAX_CACHED + 1):
        contexts.lookup("t", f"c{i}")
    contexts.lookup("t", "c0")
    assert store.reads == MAX_CACHED + 2  # the full cache was dropped, c0 read again


def test_a_store_that_cannot_tell_keeps_the_short_ttl() -> None:
    contexts, _, _ = cache(ttl_s=0.01)
    contexts.watch()()  # CountingStore has no `watch`, as SQLite has none
    assert not contexts.live


def test_while_told_of_changes_known_records_are_kept_longer_unknown_ones_not() -> None:
    store, fallbacks = CountingStore(), Counter()
    contexts = ContextCache(store, 0.01, fallbacks, watched_ttl_s=60.0)  # type: ignore[arg-type]
    contexts.watching(True)
    contexts.lookup("t", "doc")
    contexts.lookup("t", "unknown")
    time.sleep(0.02)
    contexts.lookup("t", "doc")
    contexts.lookup("t", "unknown")
    assert store.reads == 3  # doc once; unknown (not yet created, no one tells) twice
    contexts.watching(False)  # the watch is down: everything goes, the short TTL is back
    contexts.lookup("t", "doc")
    time.sleep(0.02)
    contexts.lookup("t", "doc")
    assert store.reads == 5


def test_told_changes_drop_one_context_or_all() -> None:
    contexts, store, _ = cache()
    for name in ("a", "b", "c"):
        contexts.lookup("t", name)
    contexts.forget("t", "a")
    contexts.lookup("t", "a")
    contexts.lookup("t", "b")
    assert store.reads == 4
    contexts.forget_all()
    contexts.lookup("t", "b")
    contexts.lookup("t", "c")
    assert store.reads == 6


def test_a_read_that_a_change_overtook_is_not_kept() -> None:
    """A change told while the store was being read: what the read returned may predate
    it, so it is returned but not kept."""
    contexts, store, _ = cache()
    read = store.get_context

    def read_then_told(tenant: str, context_id: str) -> ContextRecord | None:
        found = read(tenant, context_id)
        contexts.forget(tenant, context_id)  # the watch's thread, in the middle of the read
        return found

    store.get_context = read_then_told  # type: ignore[method-assign]
    contexts.lookup("t", "doc")
    store.get_context = read  # type: ignore[method-assign]
    contexts.lookup("t", "doc")
    contexts.lookup("t", "doc")
    assert store.reads == 2
