"""`sleeptime serve` logs its aggregates to MLflow, and SIGTERM still gets the last window in.

uvicorn raises SIGTERM again once it has shut down, which would end the process before
anything after `serve` ran; this runs the real command to show that the last window is
logged and the run ended (FINISHED) before the process goes.
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
    port, mlflow_db = free_port(), tmp_path / "mlruns" / "mlflow.db"
    command = [
        *(sys.executable, "-m", "training.serve_cmd", "--port", str(port)),
        *("--upstream-url", fake.url, "--upstream-model", "m"),
        *("--db", str(tmp_path / "s.sqlite"), "--salt-file", str(tmp_path / "salt")),
        *("--mlflow-every-s", "1", "--mlflow-uri", f"sqlite:///{mlflow_db}"),
    ]
    process = subprocess.Popen(command, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        _wait_for(lambda: _get(port, "/health"), "the proxy did not start")
        _wait_for(lambda: _count(mlflow_db, "metrics") > 0, "no window was logged")  # run open
        fake.enqueue(*[completion("hi", usage=usage_body(3, 1))] * 3)
        ids = [_chat(port) for _ in range(3)]
        _wait_for(lambda: _label(port, ids[0]), "the label was refused")
        process.send_signal(signal.SIGTERM)
        assert process.wait(60) in (0, -signal.SIGTERM)
    finally:
        process.kill()
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
        f"http://127.0.0.1:{port}{path}", json.dumps(body).encode(), {"Content-Type": "json"}
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
