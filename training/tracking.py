"""The one module that imports mlflow: every benchmark and training run is reviewable.

The store is `sqlite:///mlruns/mlflow.db` with artifacts under mlruns/ (since
MLflow 3.7 a bare file store is refused), so `mlflow ui --backend-store-uri
sqlite:///mlruns/mlflow.db` shows every run. An empty URI leaves MLflow's own choice
(`MLFLOW_TRACKING_URI`) in place. Every experiment is tagged as model development:
MLflow 3's UI otherwise opens an untagged experiment on its (empty) GenAI traces page.
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import warnings
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

# The tag MLflow 3's UI reads to open an experiment on runs rather than on traces.
EXPERIMENT_KIND = {"mlflow.experimentKind": "custom_model_development"}
DESCRIPTION_TAG = "mlflow.note.content"  # the run's description in the UI
BATCH_METRICS = 1000  # MLflow's limit per log_batch call
BATCH_PARAMS = 100


def _mlflow():
    os.environ.setdefault("MLFLOW_ENABLE_ASYNC_LOGGING", "false")
    os.environ.setdefault("GIT_PYTHON_REFRESH", "quiet")
    # Against a tracking server MLflow prints a "View run" line per run on stdout, which
    # would break a command's `--json` (found with `train` against `mlflow server`).
    os.environ.setdefault("MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT", "true")
    logging.getLogger("mlflow").setLevel(logging.WARNING)
    logging.getLogger("alembic").setLevel(logging.WARNING)
    import mlflow

    return mlflow


def artifact_root_for(uri: str) -> str | None:
    """Artifacts beside a local sqlite store (mlruns/), not in the working directory."""
    if uri.startswith("sqlite:///"):
        return str((Path(uri.removeprefix("sqlite:///")).parent).resolve())
    return None


def resolve_uri(uri: str) -> str:
    """`uri`, or where empty `MLFLOW_TRACKING_URI` (empty too: MLflow's own default)."""
    return uri or os.environ.get("MLFLOW_TRACKING_URI", "")


def _open_client(uri: str) -> Any:
    """A client of `uri` (resolved), its sqlite folder made."""
    mlflow = _mlflow()
    if uri.startswith("sqlite:///"):
        Path(uri.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
    return mlflow.MlflowClient(tracking_uri=uri or None)


def experiment_id(client: Any, name: str, uri: str) -> str:
    """The experiment's id, created if new, tagged with its kind either way."""
    known = client.get_experiment_by_name(name)
    if known is None:
        return client.create_experiment(
            name, artifact_location=artifact_root_for(uri), tags=EXPERIMENT_KIND
        )
    for key, value in EXPERIMENT_KIND.items():
        if known.tags.get(key) != value:
            client.set_experiment_tag(known.experiment_id, key, value)
    return known.experiment_id


def find_run(client: Any, experiment: str, tag: str, value: str) -> str | None:
    """The newest run of the experiment whose `tag` is `value`, or None."""
    quoted = value.replace("'", "\\'")
    found = client.search_runs(
        [experiment],
        filter_string=f"tags.`{tag}` = '{quoted}'",
        order_by=["attributes.start_time DESC"],
        max_results=1,
    )
    return found[0].info.run_id if found else None


@contextlib.contextmanager
def run(
    uri: str,
    experiment: str,
    name: str,
    *,
    resume: tuple[str, str] | None = None,
    tags: Mapping[str, str] | None = None,
    started_ms: int | None = None,
) -> Iterator[Any]:
    """The active run for the block. `resume=(tag, value)`: continue the experiment's run
    with that tag if there is one (a resumed study keeps one parent), else start one
    carrying it. `started_ms`: a new run's start, when the work began before the logging."""
    mlflow = _mlflow()
    uri = resolve_uri(uri)
    client = _open_client(uri)
    if uri:  # the fluent API's URI is the process's: set it even to the environment's
        mlflow.set_tracking_uri(uri)
    experiment_key = experiment_id(client, experiment, uri)
    mlflow.set_experiment(experiment_id=experiment_key)
    all_tags = dict(tags or {}) | (dict([resume]) if resume else {})
    previous = find_run(client, experiment_key, *resume) if resume else None
    if previous is None and started_ms is not None:
        from mlflow.tracking.context.registry import resolve_tags  # user, source: as start_run

        previous = client.create_run(
            experiment_key, start_time=started_ms, run_name=name, tags=resolve_tags(all_tags)
        ).info.run_id
    with mlflow.start_run(
        run_id=previous, run_name=None if previous else name, tags=all_tags
    ) as active:
        yield active


def log_params(params: Mapping[str, Any]) -> None:
    _mlflow().log_params({k: str(v)[:500] for k, v in params.items()})


def set_tags(tags: Mapping[str, Any]) -> None:
    _mlflow().set_tags({k: str(v) for k, v in tags.items()})


def logged_params() -> dict[str, str]:
    """The active run's params: a resumed run may not change one."""
    mlflow = _mlflow()
    return dict(mlflow.get_run(mlflow.active_run().info.run_id).data.params)


def log_metrics(
    metrics: Mapping[str, float | int | None], step: int | None = None, *, nan: bool = False
) -> None:
    """`nan`: log a missing value as NaN rather than skip it, so that a run logged again
    (a resumed study) does not keep showing the value its metric had before."""
    if nan:
        clean = {k: math.nan if v is None else float(v) for k, v in metrics.items()}
        _mlflow().log_metrics(clean, step=step)
    else:
        _mlflow().log_metrics(_finite(metrics), step=step)


def log_metric_steps(steps: Iterable[tuple[int, int, Mapping[str, float | None]]]) -> int:
    """(step, timestamp in ms, metrics) rows on the active run, in batches: a study's
    progress in a handful of calls, whatever its number of trials."""
    mlflow = _mlflow()
    from mlflow.entities import Metric

    rows = [
        Metric(key, value, timestamp, step)
        for step, timestamp, metrics in steps
        for key, value in _finite(metrics).items()
    ]
    client, run_id = mlflow.MlflowClient(), mlflow.active_run().info.run_id
    for start in range(0, len(rows), BATCH_METRICS):
        client.log_batch(run_id, metrics=rows[start : start + BATCH_METRICS])
    return len(rows)


def _finite(metrics: Mapping[str, float | int | None]) -> dict[str, float]:
    return {k: float(v) for k, v in metrics.items() if v is not None and math.isfinite(float(v))}


def log_artifact(path: Path, folder: str | None = None) -> None:
    _mlflow().log_artifact(str(path), artifact_path=folder)


def log_text(text: str, name: str) -> None:
    _mlflow().log_text(text, name)


def log_dict(data: Mapping[str, Any], name: str) -> None:
    _mlflow().log_dict(dict(data), name)


def log_table_input(path: Path, name: str, context: str, tags: Mapping[str, str]) -> str:
    """A CSV file (an outcome table) as a dataset input of the active run: its source path,
    schema, row count and digest in the run's lineage. Returns the digest."""
    mlflow = _mlflow()
    import pandas as pd
    from mlflow.data.sources import LocalArtifactDatasetSource

    frame = pd.read_csv(path)
    text = [c for c in frame.columns if isinstance(frame[c].dtype, pd.StringDtype)]
    frame = frame.astype(dict.fromkeys(text, object))  # a schema MLflow can infer
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # its hint about integer columns, not ours to act on
        dataset = mlflow.data.from_pandas(
            frame, source=LocalArtifactDatasetSource(str(path.resolve())), name=name
        )
        mlflow.log_input(dataset, context=context, tags=dict(tags))
    return str(dataset.digest)


def sync_child_runs(
    children: Mapping[str, tuple[str, Mapping[str, Any], Mapping[str, float]]], key_tag: str
) -> tuple[int, int]:
    """Child runs of the active run, one per key of `children` ((name, params, metrics)),
    the key kept in the tag `key_tag`: a key already logged is left as it is, a child whose
    key is gone is deleted. Returns (created, deleted): a resumed study's Pareto front moves,
    and its children follow it in a few calls, not one run per trial."""
    mlflow = _mlflow()
    from mlflow.entities import Metric, Param, RunTag
    from mlflow.utils.time import get_current_time_millis

    parent, client = mlflow.active_run().info, mlflow.MlflowClient()
    logged = {
        r.data.tags.get(key_tag): r.info.run_id
        for r in client.search_runs(
            [parent.experiment_id],
            filter_string=f"tags.mlflow.parentRunId = '{parent.run_id}'",
            max_results=5000,
        )
    }
    gone = [run_id for key, run_id in logged.items() if key not in children]
    for run_id in gone:
        client.delete_run(run_id)
    now = get_current_time_millis()
    new = {key: child for key, child in children.items() if key not in logged}
    for key, (name, params, metrics) in new.items():
        tags = {"mlflow.parentRunId": parent.run_id, key_tag: key}
        child = client.create_run(parent.experiment_id, run_name=name, tags=tags)
        client.log_batch(
            child.info.run_id,
            metrics=[Metric(k, v, now, 0) for k, v in _finite(metrics).items()],
            params=[Param(k, str(v)[:500]) for k, v in params.items()][:BATCH_PARAMS],
            tags=[RunTag("sleeptime.kind", "trial")],
        )
        client.set_terminated(child.info.run_id)
    return len(new), len(gone)


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
        from mlflow.entities import Param

        uri = resolve_uri(uri)
        self._client = _open_client(uri)
        experiment_key = experiment_id(self._client, experiment, uri)
        run = self._client.create_run(experiment_key, run_name=name, tags=dict(tags or {}))
        self.run_id: str = run.info.run_id
        pairs = [Param(k, str(v)[:500]) for k, v in (params or {}).items()]
        for start in range(0, len(pairs), BATCH_PARAMS):
            self._client.log_batch(self.run_id, params=pairs[start : start + BATCH_PARAMS])

    def log_metrics(self, metrics: Mapping[str, float | int | None], step: int) -> None:
        from mlflow.entities import Metric
        from mlflow.utils.time import get_current_time_millis

        now = get_current_time_millis()
        clean = [Metric(k, v, now, step) for k, v in _finite(metrics).items()]
        for start in range(0, len(clean), BATCH_METRICS):
            self._client.log_batch(self.run_id, metrics=clean[start : start + BATCH_METRICS])

    def end(self, status: str = "FINISHED") -> None:
        self._client.set_terminated(self.run_id, status)
