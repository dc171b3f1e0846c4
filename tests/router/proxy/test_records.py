"""Records: ids, the journal-first record path, and sightings that queue sleep-time work."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from router.proxy.contexts import identify
from router.proxy.records import Records
from router.store import SqliteStore
from router.store.base import RequestRecord
from router.store.journal import RecordJournal

MESSAGES = [{"role": "system", "content": "Facts."}, {"role": "user", "content": "Q?"}]


class Waker:
    def __init__(self) -> None:
        self.woken = 0

    def wake(self) -> None:
        self.woken += 1


@pytest.fixture
def store(tmp_path: Path) -> Iterator[SqliteStore]:
    store = SqliteStore(tmp_path / "records.sqlite")
    yield store
    store.close()


def started(store: SqliteStore, **options: object) -> Records:
    records = Records(store, **options)  # type: ignore[arg-type]
    records.writer.start()
    return records


def test_ids_are_unique_and_differ_across_processes(store: SqliteStore) -> None:
    first, second = Records(store), Records(store)
    ids = {first.new_id() for _ in range(1000)}
    assert len(ids) == 1000 and all(i.startswith("req-") for i in ids)
    assert first.new_id()[:20] != second.new_id()[:20]  # the per-process prefix


def test_a_record_reaches_the_store_with_or_without_a_journal(
    store: SqliteStore, tmp_path: Path
) -> None:
    for journal in (None, RecordJournal(tmp_path / "journal").open()):
        records = started(store, journal=journal)
        record = RequestRecord("t", records.new_id(), 1.0, "full", 200, completion_tokens=3)
        records.record(record)
        records.close()
        assert store.get_record("t", record.request_id) == record
    assert list((tmp_path / "journal").iterdir()) == []  # drained on close


def test_a_context_seen_twice_is_queued_and_wakes_the_worker(store: SqliteStore) -> None:
    records, waker = started(store), Waker()
    records.worker = waker
    ref, _ = identify(MESSAGES, None)
    assert ref is not None
    records.sighted("t", ref)
    records.writer.flush()
    assert store.job_counts() == {}
    records.sighted("t", ref)
    records.close()
    assert store.get_context("t", ref.context_id).seen == 2
    assert store.job_counts() == {"queued": 1} and waker.woken == 1


def test_nothing_is_queued_with_sleep_off(store: SqliteStore) -> None:
    records = started(store, sleep_enabled=False)
    ref, _ = identify(MESSAGES, "doc")
    assert ref is not None
    for _ in range(3):
        records.sighted("t", ref)
    records.close()
    assert store.get_context("t", "doc").seen == 3 and store.job_counts() == {}
