"""Proxy aggregates to MLflow: what each window logs, retries, shutdown, and no secrets."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import pytest

from router.settings import safe_url
from router.store.base import Aggregates, RequestRecord
from router.store.sqlite import SqliteStore
from training.commands import aggregate
from training.commands.aggregate import (
    EXPERIMENT,
    AggregateJob,
    MlflowSink,
    job_params,
    metrics_of,
)

TENANT = "t-" + "5e" * 16
UPSTREAM_KEY = "sk-upstream-secret-0123"


class ListSink:
    """Keeps what it is given; `fail` makes the next calls raise."""

    def __init__(self, fail: int = 0) -> None:
        self.logged: list[tuple[int, dict[str, float | None]]] = []
        self.closed = False
        self.fail = fail

    def log(self, metrics: Mapping[str, float | None], step: int) -> None:
        if self.fail:
            self.fail -= 1
            raise ConnectionError("MLflow is down")
        self.logged.append((step, dict(metrics)))

    def close(self) -> None:
        self.closed = True


def record(request_id: str, **fields: Any) -> RequestRecord:
    values: dict[str, Any] = {"time": 1.0, "route": "full", "status": 200, **fields}
    return RequestRecord(tenant=TENANT, request_id=request_id, **values)


@pytest.fixture
def db(tmp_path: Path) -> Path:
    return tmp_path / "proxy.sqlite"


def exporter(db: Path, sink: Any, every_s: float = 60.0) -> AggregateJob:
    return AggregateJob(lambda: SqliteStore(db), sink, every_s=every_s)


def wait_for(condition: Callable[[], bool], timeout_s: float = 30.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


def test_metric_names_cover_window_and_total() -> None:
    window = Aggregates(
        requests=4,
        tenants=2,
        by_route={"full": 3, "enriched": 1},
        by_status={"2xx": 3, "5xx": 1},
        cost=12.5,
        latency_p50_ms=80.0,
        feedback_by_route={"enriched": (2, 1)},
        sleep_done=1,
        sleep_tokens=40,
    )
    got = metrics_of(window, Aggregates())
    assert got["window/requests"] == 4 and got["window/tenants"] == 2
    assert (got["window/route/full"], got["window/route/cached"]) == (3, 0)  # zero, no gap
    assert (got["window/status/5xx"], got["window/status/4xx"]) == (1, 0)
    assert got["window/error_rate"] == 0.25 and got["window/cost"] == 12.5
    assert (got["window/feedback"], got["window/accuracy"]) == (2, 0.5)
    assert got["window/accuracy/enriched"] == 0.5 and got["window/feedback/enriched"] == 2
    assert got["window/sleep_tokens"] == 40 and got["window/latency_p95_ms"] is None
    assert got["total/requests"] == 0 and got["total/accuracy"] is None


def test_each_tick_logs_its_window_and_the_total(db: Path) -> None:
    sink = ListSink()
    metrics = exporter(db, sink)
    SqliteStore(db).add_records([record("r1", completion_tokens=5)])  # before: not counted
    assert metrics.tick()  # opens the store: the origin
    store = SqliteStore(db)
    store.add_records([record("r2", completion_tokens=7), record("r3", status=502)])
    store.add_feedback(TENANT, "r2", True)
    assert metrics.tick()
    store.add_records([record("r4", completion_tokens=1)])
    assert metrics.tick()
    steps = [step for step, _ in sink.logged]
    assert steps == [0, 1, 2]
    window = [m["window/requests"] for _, m in sink.logged]
    total = [m["total/requests"] for _, m in sink.logged]
    assert (window, total) == ([0, 2, 1], [0, 2, 3])
    assert sink.logged[1][1]["window/completion_tokens"] == 7
    assert sink.logged[1][1]["window/accuracy"] == 1.0
    assert sink.logged[2][1]["total/completion_tokens"] == 8


def test_spend_in_dollars_per_window_requests_and_sleep(db: Path) -> None:
    sink = ListSink()
    metrics = exporter(db, sink)
    assert metrics.tick()
    store = SqliteStore(db)
    store.add_records([record("r1", cost_usd=0.25), record("r2", cost_usd=0.5)])
    store.add_sleep_spend(TENANT, 0.125)
    assert metrics.tick()
    store.add_records([record("r3", cost_usd=1.0)])
    assert metrics.tick()
    first, second = sink.logged[1][1], sink.logged[2][1]
    assert (first["window/spend_usd"], first["window/sleep_spend_usd"]) == (0.75, 0.125)
    assert (second["window/spend_usd"], second["window/sleep_spend_usd"]) == (1.0, 0.0)
    assert (second["total/spend_usd"], second["total/sleep_spend_usd"]) == (1.75, 0.125)
    store.close()


def test_a_failed_window_is_retried_by_the_next_tick(db: Path) -> None:
    sink = ListSink()
    metrics = exporter(db, sink)
    assert metrics.tick()
    sink.fail = 1
    SqliteStore(db).add_records([record("r1")])
    assert not metrics.tick() and metrics.failures == 1
    SqliteStore(db).add_records([record("r2")])
    assert metrics.tick()
    assert [step for step, _ in sink.logged] == [0, 1]
    assert sink.logged[1][1]["window/requests"] == 2  # both intervals, in the next step


def test_a_store_that_fails_to_open_is_retried(db: Path) -> None:
    attempts: list[int] = []

    def flaky() -> SqliteStore:
        attempts.append(1)
        if len(attempts) == 1:
            raise OSError("disk not mounted yet")
        return SqliteStore(db)

    sink = ListSink()
    metrics = AggregateJob(flaky, sink, every_s=60.0)
    assert not metrics.tick()
    assert metrics.tick() and len(attempts) == 2 and sink.logged[0][0] == 0


def test_stop_flushes_the_last_window(db: Path) -> None:
    sink = ListSink()
    metrics = exporter(db, sink, every_s=0.05).start()
    wait_for(lambda: metrics.windows >= 1)
    SqliteStore(db).add_records([record("late", prompt_tokens=3)])
    metrics.stop()
    assert sink.closed and not metrics._thread.is_alive()
    last = sink.logged[-1][1]
    assert (last["total/requests"], last["total/prompt_tokens"]) == (1, 3)


def test_a_proxy_stopped_before_the_first_tick_logs_nothing(db: Path) -> None:
    sink = ListSink()
    metrics = exporter(db, sink, every_s=60.0).start()
    metrics.stop()
    assert sink.logged == [] and sink.closed
    metrics.stop()  # idempotent


def test_params_are_an_allowlist_without_secrets() -> None:
    params = job_params(f"postgresql://alice:pw-in-url@db:5432/s?key={UPSTREAM_KEY}", every_s=60.0)
    text = repr(params)
    assert UPSTREAM_KEY not in text and "pw-in-url" not in text and "alice" not in text
    assert params == {"store": "postgresql://db:5432/s", "every_s": 60.0}
    assert safe_url("http://[::1]:8080/v1?k=1") == "http://[::1]:8080/v1"
    assert safe_url("http://host:notaport/") == "(not a valid URL)"


def test_mlflow_gets_one_run_with_windows_and_no_secrets(tmp_path: Path, db: Path) -> None:
    uri = f"sqlite:///{tmp_path}/mlruns/mlflow.db"
    sink = MlflowSink(uri, job_params(f"sqlite:///{db}", every_s=60.0), name="proxy test")
    metrics = exporter(db, sink)
    metrics.tick()
    store = SqliteStore(db)
    store.add_records([record("r1", prompt_tokens=11, latency_ms=40.0), record("r2")])
    store.add_feedback(TENANT, "r1", False)
    metrics.tick()
    metrics._close()

    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri=uri)
    experiment = client.get_experiment_by_name(EXPERIMENT)
    assert experiment is not None
    [run] = client.search_runs([experiment.experiment_id])
    assert run.info.run_id == sink.run_id and run.info.status == "FINISHED"
    history = client.get_metric_history(run.info.run_id, "window/requests")
    assert [(m.step, m.value) for m in history] == [(0, 0.0), (1, 2.0)]
    assert run.data.metrics["total/prompt_tokens"] == 11.0
    assert run.data.metrics["total/accuracy"] == 0.0
    assert run.data.metrics["window/tenants"] == 1.0 and "total/tenants" not in run.data.metrics
    logged = repr((run.data.params, sorted(run.data.metrics), run.data.tags, run.info.run_name))
    for secret in (TENANT, UPSTREAM_KEY, "pw-in-url", "query-secret"):
        assert secret not in logged


def test_once_logs_everything_the_store_holds(tmp_path: Path, db: Path) -> None:
    store = SqliteStore(db)
    store.add_records([record("r1", completion_tokens=5), record("r2", completion_tokens=7)])
    store.close()
    uri = f"sqlite:///{tmp_path}/mlruns/mlflow.db"
    assert aggregate.main(["--store", f"sqlite:///{db}", "--once", "--mlflow-uri", uri]) == 0

    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri=uri)
    [run] = client.search_runs([client.get_experiment_by_name(EXPERIMENT).experiment_id])
    assert run.data.metrics["total/requests"] == 2.0
    assert run.data.metrics["total/completion_tokens"] == 12.0
    assert run.data.params["store"] == f"sqlite:///{db}"


def test_an_unknown_store_engine_fails_with_its_name(tmp_path: Path) -> None:
    uri = f"sqlite:///{tmp_path}/mlruns/mlflow.db"
    argv = ["--store", "mysql://db/s", "--once", "--mlflow-uri", uri]
    assert aggregate.main(argv) == 1  # the tick fails, logged with the reason; nothing crashes
