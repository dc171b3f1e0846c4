"""The one module that imports mlflow: every benchmark and training run is reviewable.

The store is `sqlite:///mlruns/mlflow.db` with artifacts under mlruns/ (since
MLflow 3.7 a bare file store is refused), so `mlflow ui --backend-store-uri
sqlite:///mlruns/mlflow.db` shows every run.
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any


def _mlflow():
    os.environ.setdefault("MLFLOW_ENABLE_ASYNC_LOGGING", "false")
    os.environ.setdefault("GIT_PYTHON_REFRESH", "quiet")
    logging.getLogger("mlflow").setLevel(logging.WARNING)
    logging.getLogger("alembic").setLevel(logging.WARNING)
    import mlflow

    return mlflow


def artifact_root_for(uri: str) -> str | None:
    """Artifacts beside a local sqlite store (mlruns/), not in the working directory."""
    if uri.startswith("sqlite:///"):
        return str((Path(uri.removeprefix("sqlite:///")).parent).resolve())
    return None


@contextlib.contextmanager
def run(uri: str, experiment: str, name: str, *, nested: bool = False) -> Iterator[Any]:
    mlflow = _mlflow()
    if uri.startswith("sqlite:///"):
        Path(uri.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
    mlflow.set_tracking_uri(uri)
    if mlflow.get_experiment_by_name(experiment) is None:
        mlflow.create_experiment(experiment, artifact_location=artifact_root_for(uri))
    mlflow.set_experiment(experiment)
    with mlflow.start_run(run_name=name, nested=nested) as active:
        yield active


def log_params(params: Mapping[str, Any]) -> None:
    _mlflow().log_params({k: str(v)[:500] for k, v in params.items()})


def log_metrics(metrics: Mapping[str, float | int | None], step: int | None = None) -> None:
    clean = {k: float(v) for k, v in metrics.items() if v is not None and math.isfinite(float(v))}
    _mlflow().log_metrics(clean, step=step)


def log_artifact(path: Path) -> None:
    _mlflow().log_artifact(str(path))


def log_child_runs(children: list[tuple[str, dict[str, Any], dict[str, float]]]) -> int:
    """Each (name, params, metrics) as a child run of the active run, one batch call each:
    thousands of trials stay reviewable without slowing the search itself."""
    mlflow = _mlflow()
    from mlflow.entities import Metric, Param, RunTag
    from mlflow.utils.time import get_current_time_millis

    parent = mlflow.active_run()
    client = mlflow.MlflowClient()
    now = get_current_time_millis()
    for name, params, metrics in children:
        child = client.create_run(
            parent.info.experiment_id,
            run_name=name,
            tags={"mlflow.parentRunId": parent.info.run_id},
        )
        client.log_batch(
            child.info.run_id,
            metrics=[Metric(k, float(v), now, 0) for k, v in metrics.items() if math.isfinite(v)],
            params=[Param(k, str(v)) for k, v in params.items()],
            tags=[RunTag("sleeptime.kind", "trial")],
        )
        client.set_terminated(child.info.run_id)
    return len(children)


class ClientRun:
    """One run that stays open for hours, logged through an `MlflowClient` of its own.

    The fluent API's active run and tracking URI belong to the whole process (`run` above
    sets both); the proxy's metrics thread must neither read nor change them, so it holds
    its own client and its run's id. Values are kept as `log_params` / `log_metrics` keep
    them: params cut to 500 characters, metrics without None, NaN or infinities."""

    def __init__(
        self,
        uri: str,
        experiment: str,
        name: str,
        *,
        params: Mapping[str, Any] | None = None,
        tags: Mapping[str, str] | None = None,
    ) -> None:
        mlflow = _mlflow()
        from mlflow.entities import Param

        if uri.startswith("sqlite:///"):
            Path(uri.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
        self._client = mlflow.MlflowClient(tracking_uri=uri)
        known = self._client.get_experiment_by_name(experiment)
        experiment_id = (
            known.experiment_id
            if known is not None
            else self._client.create_experiment(
                experiment, artifact_location=artifact_root_for(uri)
            )
        )
        run = self._client.create_run(experiment_id, run_name=name, tags=dict(tags or {}))
        self.run_id: str = run.info.run_id
        pairs = [Param(k, str(v)[:500]) for k, v in (params or {}).items()]
        for start in range(0, len(pairs), 100):  # MLflow's limit per batch
            self._client.log_batch(self.run_id, params=pairs[start : start + 100])

    def log_metrics(self, metrics: Mapping[str, float | int | None], step: int) -> None:
        from mlflow.entities import Metric
        from mlflow.utils.time import get_current_time_millis

        now = get_current_time_millis()
        clean = [
            Metric(k, float(v), now, step)
            for k, v in metrics.items()
            if v is not None and math.isfinite(float(v))
        ]
        for start in range(0, len(clean), 1000):  # MLflow's limit per batch
            self._client.log_batch(self.run_id, metrics=clean[start : start + 1000])

    def end(self, status: str = "FINISHED") -> None:
        self._client.set_terminated(self.run_id, status)
