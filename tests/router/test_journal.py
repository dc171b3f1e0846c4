"""The record journal: what was appended reaches the store exactly once in effect, whatever
crash comes between the append, the commit and the segment's deletion."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest

from router.store.base import RequestRecord
from router.store.journal import SEGMENT, UNNAMED, Drained, RecordJournal, decode
from router.store.sqlite import SqliteStore

ROOT = Path(__file__).resolve().parents[2]


def record(n: int, **fields: object) -> RequestRecord:
    values: dict = {"time": 1.5, "route": "full", "status": 200, "latency_ms": 2.5, **fields}
    return RequestRecord(tenant="t1", request_id=f"r{n}", **values)


@pytest.fixture
def store(tmp_path: Path) -> Iterator[SqliteStore]:
    store = SqliteStore(tmp_path / "s.sqlite")
    yield store
    store.close()


@pytest.fixture
def journal(tmp_path: Path) -> Iterator[RecordJournal]:
    journal = RecordJournal(tmp_path / "journal").open()
    yield journal
    journal.close()


def segments(directory: Path) -> list[Path]:
    return sorted(directory.glob(f"*{SEGMENT}"))


def stored(store: SqliteStore, count: int) -> list[RequestRecord | None]:
    return [store.get_record("t1", f"r{n}") for n in range(count)]


def test_appended_records_reach_the_store_and_the_segment_goes(
    journal: RecordJournal, store: SqliteStore
) -> None:
    assert all(journal.append(record(n)) for n in range(3))
    assert journal.drain(store) == Drained(segments=1, records=3)
    assert stored(store, 3) == [record(n) for n in range(3)]
    assert len(segments(journal.directory)) == 1  # only the fresh active one is left


def test_appends_after_a_drain_go_with_the_next(journal: RecordJournal, store: SqliteStore) -> None:
    journal.append(record(0))
    journal.drain(store)
    journal.append(record(1))
    assert store.get_record("t1", "r1") is None
    assert journal.drain(store).records == 1 and store.get_record("t1", "r1") == record(1)


def test_an_idle_journal_makes_no_segments(journal: RecordJournal, store: SqliteStore) -> None:
    for _ in range(3):
        assert journal.drain(store) == Drained()
    assert len(segments(journal.directory)) == 1


def test_a_torn_last_line_is_skipped_and_counted(tmp_path: Path, store: SqliteStore) -> None:
    directory = tmp_path / "journal"
    writer = RecordJournal(directory).open()
    writer.append(record(0))
    writer.append(record(1))
    writer.close()
    (segment,) = segments(directory)
    with segment.open("ab") as handle:
        handle.write(b'{"tenant":"t1","request_id":"r2","ti')  # the write a crash cut short
    assert RecordJournal(directory).recover(store) == Drained(segments=1, records=2, skipped=1)
    assert stored(store, 3) == [record(0), record(1), None]
    assert segments(directory) == []


def test_lines_that_do_not_decode_are_skipped() -> None:
    good = b'{"tenant":"t1","request_id":"r0","time":1.5,"route":"full","status":200}\n'
    data = good + b"not json\n[1, 2]\n" + b'{"tenant":"t1"}\n' + b"\xff\xfe\n" + good
    records, skipped = decode(data)
    assert [r.request_id for r in records] == ["r0", "r0"] and skipped == 4


def test_unknown_fields_from_a_newer_version_are_ignored() -> None:
    line = b'{"tenant":"t1","request_id":"r0","time":1,"route":"full","status":200,"new":1}\n'
    assert decode(line) == ([RequestRecord("t1", "r0", 1, "full", 200)], 0)


def test_replaying_a_segment_twice_changes_nothing(
    tmp_path: Path, journal: RecordJournal, store: SqliteStore
) -> None:
    for n in range(3):
        journal.append(record(n))
    journal.close()
    (segment,) = segments(journal.directory)
    copy = shutil.copy(segment, tmp_path / "copy")
    assert journal.catch_up(store).records == 3
    shutil.copy(copy, segment)  # a crash between the commit and the delete left it
    assert RecordJournal(journal.directory).recover(store).records == 3
    assert stored(store, 3) == [record(n) for n in range(3)]
    assert store.integrity_problems() == []


def test_a_crash_between_commit_and_delete_replays_idempotently(
    journal: RecordJournal, store: SqliteStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    journal.append(record(0, completion_tokens=7))

    def killed(self: Path, missing_ok: bool = False) -> None:
        raise SystemExit("killed after the commit, before the delete")

    monkeypatch.setattr(Path, "unlink", killed)
    with pytest.raises(SystemExit):
        journal.drain(store)
    monkeypatch.undo()
    assert store.get_record("t1", "r0") == record(0, completion_tokens=7)  # committed
    assert RecordJournal(journal.directory).recover(store) == Drained(segments=1, records=1)
    assert store.get_record("t1", "r0") == record(0, completion_tokens=7)


def test_a_failing_store_keeps_the_segment_for_later(
    journal: RecordJournal, store: SqliteStore
) -> None:
    class Refusing:
        def add_records(self, records: Sequence[RequestRecord]) -> None:
            raise OSError("disk full")

    journal.append(record(0))
    with pytest.raises(OSError):
        journal.drain(Refusing())  # type: ignore[arg-type]
    assert journal.catch_up(Refusing()) == Drained()  # type: ignore[arg-type]
    assert journal.drain(store).records == 1 and store.get_record("t1", "r0") == record(0)


def test_a_live_journal_keeps_its_active_segment(
    journal: RecordJournal, store: SqliteStore
) -> None:
    """A second proxy starting on the same database must not take what the first appends."""
    journal.append(record(0))
    assert RecordJournal(journal.directory).recover(store) == Drained()
    assert journal.append(record(1))
    assert journal.drain(store).records == 2 and stored(store, 2) == [record(0), record(1)]


def test_close_leaves_the_rest_for_the_last_drain(
    journal: RecordJournal, store: SqliteStore
) -> None:
    journal.append(record(0))
    journal.close()
    assert not journal.append(record(1)) and journal.failed == 1
    assert journal.catch_up(store) == Drained(segments=1, records=1)
    assert segments(journal.directory) == []


def test_values_sqlite_cannot_hold_are_made_storable(
    journal: RecordJournal, store: SqliteStore
) -> None:
    """Otherwise one such record would fail its segment, and every later one, forever."""
    journal.append(record(0, model="m\ud800", prompt_tokens=10**30))
    assert journal.drain(store).records == 1
    got = store.get_record("t1", "r0")
    assert got is not None and got.model == "m?" and got.prompt_tokens == 2**63 - 1


def test_a_stale_unnamed_segment_is_removed(journal: RecordJournal, store: SqliteStore) -> None:
    """A process killed between creating a segment and naming it leaves an empty file."""
    stale, fresh = journal.directory / f"1-1-0{UNNAMED}", journal.directory / f"2-1-0{UNNAMED}"
    stale.touch()
    fresh.touch()
    os.utime(stale, (1.0, 1.0))
    journal.drain(store)
    assert not stale.exists() and fresh.exists()


CRASHING = """
import os, signal, sys
from router.store import RequestRecord
from router.store.journal import RecordJournal
journal = RecordJournal(sys.argv[1]).open()
for n in range(int(sys.argv[2])):
    journal.append(RequestRecord("t1", f"r{n}", 1.5, "full", 200, latency_ms=2.5))
os.kill(os.getpid(), signal.SIGKILL)
"""


def test_records_outlive_kill_9(tmp_path: Path, store: SqliteStore) -> None:
    directory = tmp_path / "journal"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    command = [sys.executable, "-c", CRASHING, str(directory), "50"]
    done = subprocess.run(command, env=env, capture_output=True, timeout=60)
    assert done.returncode == -signal.SIGKILL, done.stderr
    assert RecordJournal(directory).recover(store) == Drained(segments=1, records=50)
    assert stored(store, 50) == [record(n) for n in range(50)]


def test_journal_is_private_and_an_open_directory_is_tightened(tmp_path: Path) -> None:
    """Records name tenants and contexts: the directory is 0700, each segment 0600."""
    directory = tmp_path / "loose"
    directory.mkdir(mode=0o755)
    os.chmod(directory, 0o755)
    journal = RecordJournal(directory).open()
    journal.append(record(1, cost_usd=0.5))
    assert directory.stat().st_mode & 0o777 == 0o700
    segments = list(directory.iterdir())
    assert segments and {path.stat().st_mode & 0o777 for path in segments} == {0o600}
    records, _ = decode(b"".join(path.read_bytes() for path in segments))
    assert records == [record(1, cost_usd=0.5)]  # the dollar cost survives the journal
    journal.close()
