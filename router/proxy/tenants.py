"""Tenants: who sent a request, known only by a salted hash of their API key.

The key in `Authorization: Bearer <key>` identifies the tenant and is then
forgotten: it is never forwarded (the upstream gets the configured upstream
key), logged or stored. What is kept is HMAC-SHA256(salt, key), where the salt
is random per installation and lives in a file readable only by its owner, so
a leaked database alone cannot confirm a guessed key.

This is the tenant of local-only mode (no master key: `router.proxy.gate`), where any
bearer key names its caller's tenant; a request with no key has no tenant and is refused.
With a master key, tenants are client keys' ids instead (`router.apikeys`).
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
from pathlib import Path

from router.apikeys import bearer

SALT_BYTES = 32


class Tenants:
    def __init__(self, salt: bytes) -> None:
        if len(salt) < 16:
            raise ValueError("a tenant salt needs at least 16 bytes")
        self._salt = salt

    @classmethod
    def from_file(cls, path: Path) -> Tenants:
        return cls(load_or_create_salt(path))

    def identify(self, authorization: str | None) -> str:
        """The tenant of an `Authorization` header; ValueError when it carries no key."""
        return self.of_key(bearer(authorization))

    def of_key(self, key: str) -> str:
        if not key:
            raise ValueError("no key, no tenant")
        digest = hmac.new(self._salt, key.encode("utf-8", "surrogatepass"), hashlib.sha256)
        return "t-" + digest.hexdigest()[:32]


def load_or_create_salt(path: Path) -> bytes:
    """Written whole to a private temporary file, then linked into place: two processes
    starting together agree on one salt, and a crash never leaves a half-written one."""
    salt = _read_salt(path)
    if salt is not None:
        return salt
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f"{path.name}.{os.getpid()}.tmp")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(secrets.token_hex(SALT_BYTES))
    try:
        if path.exists():  # present but unreadable: never used, so safe to replace
            os.replace(temporary, path)
        else:
            os.link(temporary, path)
    except FileExistsError:
        pass
    finally:
        temporary.unlink(missing_ok=True)
    return _read_salt(path) or load_or_create_salt(path)


def _read_salt(path: Path) -> bytes | None:
    try:
        salt = bytes.fromhex(path.read_text().strip())
    except (FileNotFoundError, ValueError):
        return None
    return salt if len(salt) >= 16 else None
