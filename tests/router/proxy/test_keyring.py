"""The key ring: the store's keys in memory, read at most once a second whatever comes."""

from __future__ import annotations

from pathlib import Path

from router.apikeys import key_hash, mint
from router.proxy.keyring import KeyRing
from router.store import SqliteStore


class CountingStore(SqliteStore):
    reads = 0

    def list_keys(self):  # type: ignore[no-untyped-def]
        self.reads += 1
        return super().list_keys()


def test_made_up_keys_never_reach_the_store_more_than_once_a_second(tmp_path: Path) -> None:
    store = CountingStore(tmp_path / "s.sqlite")
    now = [0.0]
    ring = KeyRing(store, clock=lambda: now[0])
    for i in range(1000):
        assert ring.find(key_hash(f"sk-made-up-{i}")) is None
    assert store.reads == 1
    now[0] = 1.5
    ring.find(key_hash("sk-another"))
    assert store.reads == 2


def test_a_key_created_or_revoked_elsewhere_shows_within_a_second(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "s.sqlite")
    now = [0.0]
    ring = KeyRing(store, clock=lambda: now[0])
    key, record = mint("alice")
    assert ring.find(key_hash(key)) is None
    store.create_key(record)  # as `sleeptime keys create` would, from another process
    now[0] = 1.0
    found = ring.find(key_hash(key))
    assert found is not None and found.live and ring.key_of(record.tenant) == found
    store.revoke_key("alice")
    now[0] = 1.5
    assert ring.find(key_hash(key)).live  # type: ignore[union-attr]  # not a second yet
    now[0] = 2.0
    assert not ring.find(key_hash(key)).live  # type: ignore[union-attr]
