"""A journal of request records, so that a crash of the proxy (kill -9) loses none.

The request path appends each record as one JSON line to the active segment, a
file opened O_APPEND, with a single `os.write` before the response goes out.
A write(2) that returned is in the kernel's page cache, which outlives the
process: the line is there after kill -9. Not after a power cut: nothing here
calls fsync, which would put a disk flush on every request.

`drain(store)` runs in the store's writer thread with each batch, and once at
start before serving (`recover`). It seals the active segment (appends go on in
a fresh one), moves each sealed segment's records into the store in one
transaction and deletes the segment after the commit. The insert is idempotent
(a record is keyed by tenant and request id and written whole), so a crash
between the commit and the delete only makes the next drain write the same
rows again. A line that does not decode (the torn tail of a write cut short,
e.g. by a full disk) is skipped, counted and logged, never fatal.

Proxies on one database share its journal directory. Each holds an exclusive
flock on its active segment, and drain skips a segment someone holds, so a
starting proxy never takes the segment a live one still appends to; a new
segment is locked under a temporary name before it gets the name drain looks
for. The kernel drops a dead process's locks, so its segments are free at once.

Sightings (how often a context was seen) are not journaled. They stay in the
writer's queue in memory: a crash loses at most the last batch of them, which
only delays a context's sleep-time work by a sighting or two, while
journaling them would double the cost per request. Sleep-time jobs need no
journal: they are queued in the store itself.
"""

from __future__ import annotations

import dataclasses
import fcntl
import itertools
import json
import logging
import os
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from router.store.base import RequestRecord, Store
from router.store.files import private_dir

log = logging.getLogger("sleeptime.store")
SEGMENT = ".jsonl"
UNNAMED = ".new"  # a segment being created, before its lock is taken
STALE_UNNAMED_S = 60.0  # an unnamed segment this old belongs to a process that died creating it
_FIELDS = frozenset(f.name for f in dataclasses.fields(RequestRecord))
_INT64 = 2**63 - 1
_ENCODER = json.JSONEncoder(separators=(",", ":"))  # json.dumps with options builds one a call


@dataclass
class Drained:
    """What drains moved into the store; `skipped` lines were torn or did not decode."""

    segments: int = 0
    records: int = 0
    skipped: int = 0


class RecordJournal:
    """Append from any thread; drain from one (the writer's)."""

    def __init__(self, directory: Path | str) -> None:
        self.directory = Path(directory)
        self.failed = 0  # appends that did not reach the journal: the caller kept them otherwise
        self._lock = threading.Lock()
        self._fd: int | None = None
        self._path: Path | None = None
        self._lines = 0  # in the active segment
        self._names = itertools.count()

    def open(self) -> RecordJournal:
        private_dir(self.directory)  # segments are 0600 in a 0700 directory
        self._fd, self._path = self._new_segment()
        return self

    def append(self, record: RequestRecord) -> bool:
        """False (and counted) when the line could not be written: closed, disk full."""
        line = (_ENCODER.encode(record.__dict__) + "\n").encode()
        with self._lock:
            if self._fd is not None:
                try:
                    if os.write(self._fd, line) == len(line):
                        self._lines += 1
                        return True
                except OSError:
                    pass
        return self._failed(record)

    def drain(self, store: Store) -> Drained:
        """Moves every sealed segment nobody holds into the store, oldest first. A store that
        fails raises and leaves its segment, and the later ones, to the next drain."""
        self._seal()
        drained = Drained()
        for path in self._sealed():
            _drain_segment(path, store, drained)
        if drained.skipped:
            log.warning("record journal: skipped %d torn or unreadable lines", drained.skipped)
        return drained

    def catch_up(self, store: Store) -> Drained:
        """A drain that never raises, for start (what a crash left) and close (the rest): a
        store that fails then costs only the wait, and the records stay for a later drain."""
        try:
            return self.drain(store)
        except Exception:
            log.exception("record journal: the store refused records; they stay in the journal")
            return Drained()

    def recover(self, store: Store) -> Drained:
        """At start, before serving: what a crashed process (or a failing store) left."""
        drained = self.catch_up(store)
        if drained.records:
            log.warning(
                "record journal: records a crash left, now in the store: %d (%d segments)",
                drained.records,
                drained.segments,
            )
        return drained

    def close(self) -> None:
        """Appends fail from now on; what the active segment holds goes with the next drain,
        in this process or the next one to start."""
        with self._lock:
            fd, self._fd, self._path = self._fd, None, None
        if fd is not None:
            os.close(fd)

    def _seal(self) -> None:
        """Switches appends to a fresh segment; closing the old one releases its lock."""
        if self._fd is None or self._lines == 0:
            return
        fd, path = self._new_segment()
        with self._lock:
            old, self._fd, self._path, self._lines = self._fd, fd, path, 0
        if old is None:  # closed meanwhile: the fresh one is not needed
            os.close(fd)
            path.unlink()
        else:
            os.close(old)

    def _new_segment(self) -> tuple[int, Path]:
        """Locked before it has the name drain looks for, so no other process drains it."""
        stem = f"{time.time_ns():020d}-{os.getpid()}-{next(self._names)}"
        path, unnamed = self.directory / (stem + SEGMENT), self.directory / (stem + UNNAMED)
        fd = os.open(unnamed, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_EXCL, 0o600)
        fcntl.flock(fd, fcntl.LOCK_EX)
        os.rename(unnamed, path)
        return fd, path

    def _sealed(self) -> list[Path]:
        try:
            names = sorted(os.listdir(self.directory))
        except FileNotFoundError:
            return []
        for name in names:
            if name.endswith(UNNAMED):
                _remove_if_stale(self.directory / name)
        active = self._path
        paths = (self.directory / name for name in names if name.endswith(SEGMENT))
        return [path for path in paths if path != active]

    def _failed(self, record: RequestRecord) -> bool:
        self.failed += 1
        if self.failed == 1 or self.failed % 1000 == 0:
            log.error(
                "record journal: %d records could not be journaled (%s), latest %s",
                self.failed,
                "closed" if self._fd is None else "write failed",
                record.request_id,
            )
        return False


def _drain_segment(path: Path, store: Store, drained: Drained) -> None:
    try:  # closed by the `with` below, once locked, read and deleted
        handle = open(path, "rb")  # noqa: SIM115
    except FileNotFoundError:  # another process drained it first
        return
    with handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:  # a live process appends to it, or drains it now
            return
        if os.fstat(handle.fileno()).st_nlink == 0:  # drained between listing and opening
            return
        records, skipped = decode(handle.read())
        if records:
            store.add_records(records)
        path.unlink(missing_ok=True)
    drained.segments += 1
    drained.records += len(records)
    drained.skipped += skipped


def decode(data: bytes) -> tuple[list[RequestRecord], int]:
    """(records, lines skipped). The last line counts only when its newline made it too."""
    *lines, tail = data.split(b"\n")
    records = [r for r in map(_record, lines) if r is not None]
    return records, len(lines) - len(records) + (tail.strip() != b"")


def _record(line: bytes) -> RequestRecord | None:
    try:
        fields = json.loads(line)
        return RequestRecord(**{k: _storable(v) for k, v in fields.items() if k in _FIELDS})
    except (ValueError, TypeError, AttributeError):
        return None


def _storable(value: Any) -> Any:
    """What SQLite takes: a client's lone surrogates or an upstream's absurd token count
    must not make a segment that fails every drain and holds up all later ones."""
    if isinstance(value, str):
        return value.encode("utf-8", "replace").decode("utf-8")
    if isinstance(value, int) and not isinstance(value, bool):
        return max(-_INT64 - 1, min(_INT64, value))
    return value


def _remove_if_stale(path: Path) -> None:
    try:
        if time.time() - path.stat().st_mtime > STALE_UNNAMED_S:
            path.unlink()
    except FileNotFoundError:
        pass
