"""`sleeptime bench replicas`: real proxies on one store, counted by metrics and store."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from training.bench.cli import main


@pytest.mark.timeout(180)
def test_two_replicas_on_one_store_lose_nothing_and_do_each_job_once(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """SQLite in WAL mode takes several processes too; PostgreSQL is what scales out."""
    store = f"sqlite:///{tmp_path / 'shared.sqlite'}"
    argv = ["replicas", "--store", store, "--seconds", "2", "--contexts", "8", "--clients", "4"]
    assert main([*argv, "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    shared, single = result["replicated"], result["single_sqlite"]
    assert shared["replicas"] == 2 and len(shared["jobs_per_replica"]) == 2
    assert shared["requests"] > 0 and shared["errors"] == 0
    assert shared["jobs_in_store"] == 8 + 4  # the registered contexts, and one per client key
    assert shared["duplicate_jobs"] == 0 and shared["lost_records"] == 0
    assert single["replicas"] == 1 and single["jobs_per_replica"] == [single["jobs_in_store"]]
