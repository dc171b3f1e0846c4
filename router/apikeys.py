"""Client keys: how one is made, named and recognized, with no store and no HTTP.

A key is "sk-" and 256 random bits (`secrets.token_urlsafe(32)`). The store keeps only
its SHA-256: with that much entropy a plain hash is as safe as a slow one, and it costs a
microsecond on every request. The master key is compared in constant time.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import time

from router.store.base import ApiKey

PREFIX = "sk-"
SHOWN = 7  # characters of a key that lists show: "sk-" and four more
NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")


def new_key() -> str:
    return PREFIX + secrets.token_urlsafe(32)


def key_hash(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8", "surrogatepass")).hexdigest()


def is_master(key: str, master: str) -> bool:
    return bool(master) and hmac.compare_digest(
        key.encode("utf-8", "surrogatepass"), master.encode()
    )


def check_name(name: str) -> str:
    """A key's name goes into metrics labels and URLs: letters, digits, '.', '_', '-'."""
    if not NAME.match(name):
        raise ValueError(f"a key name is 1 to 64 letters, digits, '.', '_' or '-' (got {name!r})")
    return name


def mint(
    name: str, *, rpm: int = 0, tpm: int = 0, budget_usd: float | None = None
) -> tuple[str, ApiKey]:
    """(the key, shown once; the record the store keeps)."""
    if rpm < 0 or tpm < 0 or (budget_usd is not None and budget_usd < 0):
        raise ValueError("rpm, tpm and budget_usd must not be negative")
    key = new_key()
    record = ApiKey(
        key_id=secrets.token_hex(8),
        name=check_name(name),
        key_hash=key_hash(key),
        prefix=key[:SHOWN] + "…",
        created=time.time(),
        rpm=rpm,
        tpm=tpm,
        budget_usd=budget_usd,
    )
    return key, record


def bearer(authorization: str | None) -> str:
    """The key in `Authorization: Bearer <key>`; "" when there is none."""
    if not authorization:
        return ""
    scheme, _, key = authorization.strip().partition(" ")
    return key.strip() if scheme.lower() == "bearer" else ""
