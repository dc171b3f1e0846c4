"""`sleeptime aggregate` beside a running proxy: the real commands, one process each.

The proxy writes its records to its store; the job reads them into MLflow while the proxy
serves, and SIGTERM still gets the last window in and ends the run (FINISHED).
"""

from __future__ import annotations

import json
import signal
import sqlite3
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from fake_upstream import FakeUpstream, completion, usage_body

from router.local_server import free_port

REPO = Path(__file__).resolve().parents[3]


def test_sigterm_logs_the_last_window(tmp_path: Path, fake: FakeUpstream) -> None:
    port, mlflow_db, store = free_port(), tmp_path / "mlruns" / "mlflow.db", tmp_path / "s.sqlite"
    serve = [
        *(sys.executable, "-m", "router.commands.serve", "--port", str(port)),
        *("--upstream-url", fake.url, "--upstream-model", "m"),
        *("--store", f"sqlite:///{store}", "--salt-file", str(tmp_path / "salt")),
    ]
    aggregate = [
        *(sys.executable, "-m", "training.commands.aggregate", "--store", f"sqlite:///{store}"),
        *("--every-s", "1", "--mlflow-uri", f"sqlite:///{mlflow_db}"),
    ]
    proxy = subprocess.Popen(serve, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        _wait_for(lambda: _get(port, "/health"), "the proxy did not start")
        out = subprocess.PIPE
        job = subprocess.Popen(aggregate, cwd=REPO, stdout=out, stderr=subprocess.STDOUT)

        try:
            _wait_for(lambda: _count(mlflow_db, "metrics") > 0, "no window was logged")
            fake.enqueue(*[completion("hi", usage=usage_body(3, 1))] * 3)
            ids = [_chat(port) for _ in range(3)]
            _wait_for(lambda: all(_label(port, i) for i in ids), "a record is missing")
            job.send_signal(signal.SIGTERM)
            assert job.wait(60) == 0, job.stdout.read().decode()[-3000:] if job.stdout else ""
        finally:
            job.kill()
    finally:
        proxy.kill()
    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri=f"sqlite:///{mlflow_db}")
    [run] = client.search_runs([client.get_experiment_by_name("sleeptime-proxy").experiment_id])
    assert run.info.status == "FINISHED"  # ended after the last window, before the exit
    assert run.data.metrics["total/requests"] == 3.0
    assert run.data.metrics["total/completion_tokens"] == 3.0
    assert run.data.metrics["total/accuracy"] == 1.0


def _wait_for(condition: Any, message: str, timeout_s: float = 90.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            if condition():
                return
        except (OSError, sqlite3.Error):
            pass
        time.sleep(0.1)
    raise AssertionError(message)


def _count(db: Path, table: str) -> int:
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=1) as connection:
        return connection.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0]


def _get(port: int, path: str) -> bool:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=1):
        return True


def _post(port: int, path: str, body: dict[str, Any]) -> Any:
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}{path}",
        json.dumps(body).encode(),
        {"Content-Type": "application/json", "Authorization": "Bearer sk-aggregate-live"},
    )
    return urllib.request.urlopen(request, timeout=10)


def _chat(port: int) -> str:
    body = {"model": "m", "messages": [{"role": "user", "content": "x"}]}
    with _post(port, "/v1/chat/completions", body) as response:
        return response.headers["X-Request-Id"]


def _label(port: int, request_id: str) -> bool:
    """False while the record is still on its way to the store (404)."""
    try:
        with _post(port, "/v1/feedback", {"request_id": request_id, "correct": True}):
            return True
    except urllib.error.HTTPError as error:
        if error.code != 404:
            raise
        return False
