"""`sleeptime export`: labeled proxy requests -> an outcome table that the offline tools read."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from router import cli
from router.errors import SleeptimeError
from router.store.base import LearnedRecord, RequestRecord
from router.store.sqlite import SqliteStore
from training.commands import export as export_cmd
from training.outcomes import OUTCOMES, RUN, Outcome, read_outcomes

A, B = "t-" + "a1" * 16, "t-" + "b2" * 16
LEARNED = LearnedRecord("Notes: 9 eggs", [{"question": "How many?", "answer": "9"}], 120)


def record(request_id: str, tenant: str = A, **fields: Any) -> RequestRecord:
    values: dict[str, Any] = {"time": 1.0, "route": "full", "status": 200, "model": "m", **fields}
    return RequestRecord(tenant=tenant, request_id=request_id, **values)


IN_C1 = {"context_id": "c1", "context_version": 1}


@pytest.fixture
def db(tmp_path: Path) -> Path:
    """c1 (tenant A) slept once (120 tokens); requests on every route, most labeled."""
    path = tmp_path / "proxy.sqlite"
    store = SqliteStore(path)
    store.register_context(A, "c1", "Ann has 3 boxes of 3 eggs.")
    store.queue_sleep(A, "c1", 1)
    job = store.claim_job()
    assert job is not None
    store.finish_job(job, LEARNED)
    store.add_records(
        [
            record("full-1", **IN_C1, rung="careful", prompt_tokens=50, completion_tokens=90,
                   cached_tokens=32, latency_ms=1234.5, cost=900.0),
            record("enr-1", **IN_C1, route="enriched", rung="brief", prompt_tokens=80,
                   completion_tokens=12, latency_ms=200.0),
            record("enr-2", **IN_C1, route="enriched", completion_tokens=30),
            record("unlabeled", **IN_C1),
            record("cached", **IN_C1, route="cached"),
            record("error", **IN_C1, status=502),
            record("bare", prompt_tokens=5),
            record("other-tenant", B, context_id="c9", context_version=2, completion_tokens=4),
        ]
    )  # fmt: skip
    labels = {"full-1": True, "enr-1": True, "enr-2": False, "cached": True, "error": False}
    for request_id, correct in labels.items():
        assert store.add_feedback(A, request_id, correct)
    assert store.add_feedback(A, "bare", True) and store.add_feedback(B, "other-tenant", False)
    store.close()
    return path


def exported(out: Path) -> dict[str, Outcome]:
    return {row.query_id: row for row in read_outcomes(out / OUTCOMES)}


def test_labeled_requests_become_outcome_rows(db: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    assert export_cmd.main(["--db", str(db), "--out", str(out), "--json"]) == 0
    rows = exported(out)
    assert sorted(rows) == ["enr-1", "enr-2", "full-1", "other-tenant"]
    full, enriched, unset = rows["full-1"], rows["enr-1"], rows["enr-2"]
    assert full == Outcome(
        dataset="proxy",
        context_id=f"{A}:c1:v1",
        query_id="full-1",
        query_kind="proxy",
        queries_in_context=6,  # every request of c1 v1 in the store, labeled or not
        sleep_passes=0,
        rung=4,  # "careful"
        correct=True,
        truncated=False,
        predicted="",
        gold="",
        test_prompt_tokens=50,
        test_cached_prompt_tokens=32,
        test_completion_tokens=90,
        test_latency_s=1.2345,
        sleep_prompt_tokens=0,
        sleep_completion_tokens=0,
        sleep_latency_s=0.0,
    )
    assert (enriched.sleep_passes, enriched.rung, enriched.correct) == (1, 1, True)
    assert (enriched.sleep_completion_tokens, enriched.test_latency_s) == (120, 0.2)
    assert (unset.rung, unset.correct, unset.sleep_completion_tokens) == (4, False, 120)
    assert rows["other-tenant"].context_id == f"{B}:c9:v2"
    assert rows["other-tenant"].sleep_completion_tokens == 0


def test_the_summary_counts_what_was_not_exported(
    db: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "out"
    assert cli.main(["export", "--db", str(db), "--out", str(out)]) == 0
    text = capsys.readouterr().out
    assert "4 outcomes from 7 labeled of 8 requests" in text
    assert "1 unlabeled, 1 cached route, 1 error response, 1 no context" in text
    summary = json.loads((out / RUN).read_text())
    assert (summary["requests"], summary["labeled"], summary["unlabeled"]) == (8, 7, 1)
    assert summary["rows"] == 4 and summary["contexts"] == 2 and summary["accuracy"] == 0.5
    assert summary["routes"] == {"full": 2, "enriched": 2}
    assert summary["skipped"] == {"cached route": 1, "error response": 1, "no context": 1}
    assert summary["source"] == str(db) and summary["model"] == "m" and summary["missing"]


def test_one_tenant_and_the_assumptions(db: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    argv = ["--db", str(db), "--out", str(out), "--tenant-hash", A, "--json"]
    argv += ["--sleep-passes", "3", "--unset-rung", "2", "--include-no-context"]
    assert export_cmd.main(argv) == 0
    rows = exported(out)
    assert sorted(rows) == ["bare", "enr-1", "enr-2", "full-1"]
    assert (rows["enr-1"].sleep_passes, rows["enr-2"].rung) == (3, 2)
    assert (rows["bare"].context_id, rows["bare"].sleep_passes) == (f"{A}:bare", 0)
    assert rows["bare"].queries_in_context == 1  # a context of its own
    assert json.loads((out / RUN).read_text())["assumed"] == {"sleep_passes": 3, "unset_rung": 2}


def test_a_context_changed_since_keeps_the_row_without_sleep_tokens(
    db: Path, tmp_path: Path
) -> None:
    store = SqliteStore(db)
    store.register_context(A, "c1", "new text: version 2")
    store.close()
    summary = export_cmd.export(SqliteStore(db), tmp_path / "out")
    assert exported(tmp_path / "out")["enr-1"].sleep_completion_tokens == 0
    assert summary["sleep_tokens_unknown"] == 2


def test_no_store_is_an_error_not_a_new_store(tmp_path: Path) -> None:
    missing = tmp_path / "none.sqlite"
    with pytest.raises(SleeptimeError, match="no proxy store"):
        export_cmd.main(["--db", str(missing), "--out", str(tmp_path / "out")])
    assert not missing.exists()


def test_an_empty_store_writes_an_empty_table(tmp_path: Path) -> None:
    SqliteStore(tmp_path / "s.sqlite").close()
    summary = export_cmd.export(SqliteStore(tmp_path / "s.sqlite"), tmp_path / "out")
    assert read_outcomes(tmp_path / "out" / OUTCOMES) == []
    assert (summary["rows"], summary["accuracy"]) == (0, None)
