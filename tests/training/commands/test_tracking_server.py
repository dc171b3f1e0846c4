"""MLflow on a tracking server, as a team runs it: a real `mlflow server` (the installed
mlflow) with a PostgreSQL backend (`pg` in tests/conftest.py) and a local artifact root,
on a free port. `sleeptime aggregate --once` and a short `sleeptime train` log to it
through `MLFLOW_TRACKING_URI` alone; the test reads back what the server holds, through
MLflow's client and from the database and artifact folder behind it."""

from __future__ import annotations

import contextlib
import io
import json
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from pg_server import PgServer
from synthetic_outcomes import write_synthetic

from router.local_server import free_port
from router.store import SqliteStore
from router.store.base import RequestRecord

pytestmark = pytest.mark.timeout(240)
REPO = Path(__file__).resolve().parents[3]


@pytest.fixture(scope="module")
def server(pg: PgServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    """{"uri": the server's http URL, "db": its backend database, "artifacts": its root}."""
    db = pg.create_database()
    artifacts = tmp_path_factory.mktemp("mlflow-artifacts")
    port = free_port()
    command = [sys.executable, "-m", "mlflow", "server", "--workers", "1"]
    command += ["--backend-store-uri", db.replace("postgresql://", "postgresql+psycopg://")]
    command += ["--default-artifact-root", str(artifacts), "--host", "127.0.0.1"]
    command += ["--port", str(port)]
    log = artifacts.parent / "mlflow-server.log"
    with log.open("wb") as out:
        process = subprocess.Popen(command, cwd=REPO, stdout=out, stderr=subprocess.STDOUT)
    try:
        _wait_until_it_answers(f"http://127.0.0.1:{port}/health", process, log)
        yield {"uri": f"http://127.0.0.1:{port}", "db": db, "artifacts": str(artifacts)}
    finally:
        process.terminate()
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            process.kill()


def _wait_until_it_answers(url: str, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 90
    while True:
        with contextlib.suppress(OSError):
            urllib.request.urlopen(url, timeout=1).close()
            return
        assert process.poll() is None, log.read_text()[-3000:]
        assert time.monotonic() < deadline, "mlflow server did not answer: " + log.read_text()
        time.sleep(0.2)


def test_aggregate_logs_its_window_to_the_tracking_server(
    server: dict[str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from mlflow import MlflowClient

    from training.commands import aggregate

    store = SqliteStore(tmp_path / "proxy.sqlite")
    store.add_records(
        [
            RequestRecord("t1", f"r{i}", 1.0, "full", 200, prompt_tokens=10, completion_tokens=i)
            for i in range(1, 5)
        ]
    )
    store.close()
    monkeypatch.setenv("MLFLOW_TRACKING_URI", server["uri"])
    assert aggregate.main(["--store", f"sqlite:///{tmp_path}/proxy.sqlite", "--once"]) == 0
    client = MlflowClient(tracking_uri=server["uri"])
    experiment = client.get_experiment_by_name(aggregate.EXPERIMENT)
    [run] = client.search_runs([experiment.experiment_id])
    assert run.info.status == "FINISHED"
    assert run.data.metrics["total/requests"] == 4.0
    assert run.data.metrics["total/completion_tokens"] == 10.0
    with psycopg.connect(server["db"]) as db:  # on the server's PostgreSQL, not a local file
        stored = db.execute("SELECT status FROM runs WHERE run_uuid = %s", (run.info.run_id,))
        assert stored.fetchall() == [("FINISHED",)]


def test_train_logs_its_run_and_artifacts_to_the_tracking_server(
    server: dict[str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from mlflow import MlflowClient

    from training.commands import train as train_cmd
    from training.train_tracking import EXPERIMENT

    table = write_synthetic(tmp_path / "t", contexts=40)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", server["uri"])
    out = io.StringIO()
    monkeypatch.setattr(sys, "stdout", out)
    argv = [str(table), "--storage", str(tmp_path / "optuna.journal"), "--trials", "20"]
    assert train_cmd.main([*argv, "--out", str(tmp_path / "policy.json"), "--json"]) == 0
    summary = json.loads(out.getvalue())  # one JSON object: no "View run" line on stdout
    client = MlflowClient(tracking_uri=server["uri"])
    run = client.get_run(summary["mlflow_run_id"])
    assert run.info.experiment_id == client.get_experiment_by_name(EXPERIMENT).experiment_id
    assert run.data.metrics["test_accuracy"] == pytest.approx(summary["test_accuracy"])
    assert client.get_metric_history(run.info.run_id, "trials")[-1].value == 20.0
    artifacts = {a.path for a in client.list_artifacts(run.info.run_id)}
    assert {"policy.json", "summary.json", "trials.csv"} <= artifacts
    # Under the server's artifact root, where `mlflow ui` on the server finds them.
    assert list(Path(server["artifacts"]).glob(f"*/{run.info.run_id}/artifacts/policy.json"))
