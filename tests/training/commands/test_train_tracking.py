"""`train` in MLflow, the real thing on a temporary SQLite store: one parent run per study
that a resumed study continues, the experiment opening on runs, baselines beside the
chosen policy, the files to serve it; and the Optuna conventions (trials added, a bar only
on a terminal, a warning when the search ended on a seed)."""

from __future__ import annotations

import csv
import io
import json
import math
import sys
from pathlib import Path
from typing import Any

import pytest
from synthetic_outcomes import write_synthetic

from policies import Learned
from training import tracking
from training.commands import train as train_cmd
from training.selection import MIN_SEARCHED, search_warnings
from training.train_tracking import EXPERIMENT, STUDY_TAG, TRIAL_TAG, slug


@pytest.fixture(scope="module")
def table(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_synthetic(tmp_path_factory.mktemp("synthetic") / "t", contexts=60)


def train(table: Path, tmp: Path, *extra: str) -> list[str]:
    return [str(table), "--storage", str(tmp / "optuna.journal"),
            "--out", str(tmp / "policy.json"), *extra]  # fmt: skip


def run_json(argv: list[str], capsys: pytest.CaptureFixture[str]) -> dict[str, Any]:
    assert train_cmd.main([*argv, "--json"]) == 0
    return json.loads(capsys.readouterr().out)


@pytest.fixture(scope="module")
def resumed(table: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """One study trained twice (60 trials, then 30 more) into one MLflow store."""
    tmp = tmp_path_factory.mktemp("resumed")
    uri = f"sqlite:///{tmp}/mlruns/mlflow.db"
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("SLEEPTIME_MLFLOW_URI", uri)
        summaries = []
        for trials in ("60", "30"):
            out = io.StringIO()
            patch.setattr(sys, "stdout", out)
            assert train_cmd.main([*train(table, tmp, "--trials", trials), "--json"]) == 0
            summaries.append(json.loads(out.getvalue()))
    import mlflow

    client = mlflow.MlflowClient(tracking_uri=uri)
    return {"uri": uri, "client": client, "first": summaries[0], "second": summaries[1]}


def test_a_resumed_study_continues_its_parent_run(resumed: dict[str, Any]) -> None:
    first, second, client = resumed["first"], resumed["second"], resumed["client"]
    assert (second["trials"], second["trials_this_run"]) == (90, 30)  # --trials adds
    assert first["mlflow_run_id"] == second["mlflow_run_id"]
    experiment = client.get_experiment_by_name(EXPERIMENT)
    runs = client.search_runs([experiment.experiment_id])
    parents = [r for r in runs if "mlflow.parentRunId" not in r.data.tags]
    assert [p.info.run_id for p in parents] == [first["mlflow_run_id"]]
    assert parents[0].data.tags[STUDY_TAG] == first["study"]
    history = client.get_metric_history(first["mlflow_run_id"], "trials")
    assert sorted(m.step for m in history) == [60, 90]
    progress = client.get_metric_history(first["mlflow_run_id"], "search/best_train_accuracy")
    assert sorted(m.step for m in progress) == [25, 50, 60, 75, 90]  # each step logged once


def test_trials_are_one_table_and_pareto_children_not_a_run_each(
    resumed: dict[str, Any], tmp_path: Path
) -> None:
    client, run_id = resumed["client"], resumed["first"]["mlflow_run_id"]
    local = Path(client.download_artifacts(run_id, "trials.csv", str(tmp_path)))
    rows = list(csv.DictReader(io.StringIO(local.read_text())))
    assert [int(r["number"]) for r in rows] == list(range(90))
    front = {r["number"] for r in rows if r["pareto"] == "True"}
    children = client.search_runs(
        [client.get_run(run_id).info.experiment_id],
        filter_string=f"tags.mlflow.parentRunId = '{run_id}'",
    )
    assert {c.data.tags[TRIAL_TAG] for c in children} == front  # the front, once each
    assert all("train_accuracy" in c.data.metrics for c in children)


def test_the_experiment_opens_on_runs_not_on_traces(resumed: dict[str, Any]) -> None:
    experiment = resumed["client"].get_experiment_by_name(EXPERIMENT)
    assert experiment.tags["mlflow.experimentKind"] == "custom_model_development"


def test_the_parent_has_baselines_beside_the_chosen_policy(resumed: dict[str, Any]) -> None:
    summary = resumed["second"]
    metrics = resumed["client"].get_run(summary["mlflow_run_id"]).data.metrics
    for split in ("validation", "test"):
        assert metrics[f"{split}_accuracy"] == pytest.approx(summary[f"{split}_accuracy"])
        assert f"baseline/test-time-only-rung3/{split}_accuracy" in metrics
        assert f"baseline/always-sleep-k1-rung0/{split}_cost" in metrics
    assert metrics["baseline/test-time-only-rung3/test_accuracy"] == pytest.approx(
        summary["builtins"]["test-time-only(rung=3)"]["accuracy"]
    )


def test_the_parent_has_what_serving_and_review_need(resumed: dict[str, Any]) -> None:
    client, run_id = resumed["client"], resumed["second"]["mlflow_run_id"]
    artifacts = {a.path for a in client.list_artifacts(run_id)}
    assert {"policy.json", "policy.estimators.pkl", "summary.json", "trials.csv"} <= artifacts
    assert "policy.pareto.png" in artifacts
    run = client.get_run(run_id)
    inputs = run.inputs.dataset_inputs
    assert [i.dataset.name for i in inputs] == ["t"] and inputs[0].dataset.digest
    assert json.loads(inputs[0].dataset.source)["uri"].endswith("t/outcomes.csv.gz")
    tags = run.data.tags
    assert tags["sleeptime.command"].startswith("sleeptime train ")
    assert "--trials 30" in tags["sleeptime.command"]
    assert len(tags.get("mlflow.source.git.commit", "0" * 40)) == 40
    assert "held-out test contexts" in tags["mlflow.note.content"]
    assert run.data.params["objectives"] == "accuracy, cost"


def test_a_metric_name_says_which_baseline() -> None:
    assert slug("test-time-only(rung=3)") == "test-time-only-rung3"
    assert slug("always-sleep(passes=2, rung=0)") == "always-sleep-k2-rung0"


def test_tracking_honours_mlflow_tracking_uri(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    uri = f"sqlite:///{tmp_path}/elsewhere.db"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    with tracking.run("", "from-the-environment", "r") as active:
        run_id = active.info.run_id
    import mlflow

    client = mlflow.MlflowClient(tracking_uri=uri)
    assert client.get_run(run_id).info.run_name == "r"
    kind = client.get_experiment_by_name("from-the-environment").tags["mlflow.experimentKind"]
    assert kind == "custom_model_development"


def test_no_progress_bar_with_json_even_on_a_terminal(
    table: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setattr(sys.stdout, "isatty", lambda: True)
    argv = train(table, tmp_path, "--trials", "20", "--no-mlflow")
    run_json(argv, capsys)
    assert "trial/s" not in capsys.readouterr().err
    assert train_cmd.main(argv) == 0  # text on a terminal: the bar
    assert "20/20" in capsys.readouterr().err


def test_no_progress_bar_when_stdout_is_no_terminal(
    table: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert train_cmd.main(train(table, tmp_path, "--trials", "10", "--no-mlflow")) == 0
    assert "10/10" not in capsys.readouterr().err


def test_a_search_that_ends_on_a_seed_says_so(
    table: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    summary = run_json(train(table, tmp_path, "--trials", "3", "--no-mlflow"), capsys)
    assert summary["trials"] == 3 < summary["seeds"]  # the seeds alone ran
    assert any("seed" in w and "built-in" in w for w in summary["warnings"])
    assert any(f"fewer than {MIN_SEARCHED}" in w for w in summary["warnings"])
    assert train_cmd.main(train(table, tmp_path, "--trials", "3", "--no-mlflow")) == 0
    assert "warning: " in capsys.readouterr().err


def test_the_seed_warning_needs_a_seed_or_few_trials() -> None:
    seeds = [Learned(full_rung=3), Learned(full_rung=0)]
    searched = Learned(full_rung=3, cached_threshold=0.5)
    assert search_warnings(searched, seeds, 2 + MIN_SEARCHED) == []
    assert len(search_warnings(seeds[1], seeds, 2 + MIN_SEARCHED)) == 1
    assert len(search_warnings(searched, seeds, 2 + MIN_SEARCHED - 1)) == 1


def test_a_metric_that_went_missing_shows_as_nan_not_as_its_old_value(
    tmp_path: Path,
) -> None:
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    for ratio in (2.0, None):  # a resumed study whose new choice has no ratio
        with tracking.run(uri, "e", "r", resume=("key", "study")) as active:
            tracking.log_metrics({"ratio": ratio}, step=1, nan=True)
    import mlflow

    latest = mlflow.MlflowClient(tracking_uri=uri).get_run(active.info.run_id).data.metrics
    assert math.isnan(latest["ratio"])
