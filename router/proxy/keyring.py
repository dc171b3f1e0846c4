"""The client keys one proxy knows: every key of the store, in memory, at most ~1 s old.

The whole key table is read at most once a second, and only while requests come, so a
request costs a dict lookup, never a store read: a flood of made-up keys reaches the
store no more often than one real client does. A key revoked through this proxy's admin
API is gone at once (`reload`); revoked elsewhere (`sleeptime keys revoke`, another
proxy) within `REFRESH_S`.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from router.store.base import ApiKey, KeyStore

REFRESH_S = 1.0


class KeyRing:
    def __init__(self, store: KeyStore, clock: Callable[[], float] = time.monotonic) -> None:
        self.store = store
        self.clock = clock
        self._by_hash: dict[str, ApiKey] = {}
        self._by_tenant: dict[str, ApiKey] = {}
        self._loaded = -REFRESH_S

    def find(self, key_hash: str) -> ApiKey | None:
        """The key with that hash, live or revoked; None when the store has none."""
        self._fresh()
        return self._by_hash.get(key_hash)

    def key_of(self, tenant: str) -> ApiKey | None:
        """The key a tenant belongs to; None for the master key and local-mode tenants."""
        self._fresh()
        return self._by_tenant.get(tenant)

    def reload(self) -> None:
        keys = self.store.list_keys()
        self._by_hash = {key.key_hash: key for key in keys}
        self._by_tenant = {key.tenant: key for key in keys}
        self._loaded = self.clock()

    def _fresh(self) -> None:
        if self.clock() - self._loaded >= REFRESH_S:
            self.reload()
