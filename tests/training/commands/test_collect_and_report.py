"""collect -> outcome table -> report, with a scripted model (the real one runs in the demo
and the reference runs); MLflow is the real thing on a temporary SQLite store."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from router.sleep import SYSTEM as SLEEP_SYSTEM
from router.upstream import ChatResult, Usage
from training.commands.collect import CollectPlan, run_collection
from training.commands.report import main, summarize
from training.datasets import StatefulProblem, load_stateful_gsm8k
from training.llm_cache import CachingBackend, ResponseCache
from training.outcomes import OUTCOMES, SLEEP, read_jsonl, read_outcomes


class ScriptedModel:
    """Right with notes at any rung; without notes right only at rung budgets >= 400 tokens."""

    def __init__(self, problems: list[StatefulProblem], *, never_right: bool = False) -> None:
        self.gold = {p.queries[0].question: p.queries[0].answer for p in problems}
        self.calls = 0
        self.never_right = never_right  # a model at the floor: every answer wrong

    def chat(self, messages: list[dict], *, model: str, **params: object) -> ChatResult:
        self.calls += 1
        prompt = messages[-1]["content"]
        if messages[0]["content"] == SLEEP_SYSTEM:
            text, tokens = "NOTES:\n- a fact\nQUESTIONS:\nQ: What?\nWork: 1+1\nA: 2", 200
        else:
            gold = next(g for q, g in self.gold.items() if q in prompt)
            budget = int(params["max_tokens"])
            right = ("Notes" in prompt or budget >= 400) and not self.never_right
            text, tokens = f"Answer: {gold if right else -1}", min(budget, 300)
        return ChatResult(text, "stop", Usage(len(prompt) // 4, tokens), 0.01, model)


@pytest.fixture
def problems() -> list[StatefulProblem]:
    return load_stateful_gsm8k(limit=4)


def test_collect_writes_every_action_and_resumes_from_the_cache(
    problems: list[StatefulProblem], tmp_path: Path
) -> None:
    model = ScriptedModel(problems)
    plan = CollectPlan(sleep_budgets=(1, 2), rungs_raw=(0, 3, 4), rungs_learned=(0,))
    backend = CachingBackend(model, ResponseCache(tmp_path / "cache.sqlite"))
    run_collection(backend, "m", "gsm8k", problems, plan, tmp_path / "out", progress=False)
    rows = read_outcomes(tmp_path / "out" / OUTCOMES)
    assert len(rows) == len(problems) * plan.calls_per_query() == 4 * 5
    by_action = {(r.sleep_passes, r.rung): r for r in rows if r.context_id == problems[0].id}
    assert by_action[(0, 0)].correct is False and by_action[(0, 3)].correct is True
    assert by_action[(2, 0)].correct is True
    assert by_action[(2, 0)].sleep_completion_tokens == 400  # two passes of 200
    assert by_action[(1, 0)].sleep_completion_tokens == 200
    sleep = list(read_jsonl(tmp_path / "out" / SLEEP))
    assert [s["pass"] for s in sleep if s["context_id"] == problems[0].id] == [0, 1]
    assert sleep[0]["anticipated"] == [
        {"question": "What?", "answer": "2", "support": 1, "agreement": 1.0}
    ]
    calls = model.calls
    again = CachingBackend(model, ResponseCache(tmp_path / "cache.sqlite"))
    run_collection(again, "m", "gsm8k", problems, plan, tmp_path / "out2", progress=False)
    assert model.calls == calls and again.misses == 0
    assert read_outcomes(tmp_path / "out2" / OUTCOMES) == rows


def test_report_finds_the_saving_and_logs_to_mlflow(
    problems: list[StatefulProblem],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    plan = CollectPlan(sleep_budgets=(1,), rungs_raw=(0, 3, 4), rungs_learned=(0, 1))
    run_collection(
        ScriptedModel(problems), "m", "gsm8k", problems, plan, tmp_path / "out", progress=False
    )
    summary = summarize(tmp_path / "out", t=10, samples=200)
    # Test-time only needs the 400-token rung (300 tokens spent) to be right; with notes
    # the 16-token rung is right: 300 / 16 test tokens at accuracy 1.0.
    assert summary["equal_accuracy"] == 1.0
    assert summary["test_token_ratio_at_equal_accuracy"] == pytest.approx(300 / 16)
    assert summary["amortized_cost_ratio"] == pytest.approx(3000 / (160 + 200 / 10))
    assert summary["k_scaling"]["rung_0"]["gain_k1"] == 1.0

    assert summary["headline"].startswith(
        "headline: mean test-time tokens per query at equal accuracy 1.000"
    )
    assert "rung 3 'steps'" in summary["headline"] and "rung 0 'answer'" in summary["headline"]
    assert summary["warnings"] == []

    uri = f"sqlite:///{tmp_path}/mlruns/mlflow.db"
    monkeypatch.setenv("SLEEPTIME_MLFLOW_URI", uri)
    monkeypatch.chdir(tmp_path)
    assert main([str(tmp_path / "out"), "--json", "--bootstrap", "100", "--t", "10"]) == 0
    run_id = json.loads(capsys.readouterr().out)["mlflow_run_id"]
    import mlflow

    client = mlflow.MlflowClient(tracking_uri=uri)
    logged = client.get_run(run_id)
    metrics = logged.data.metrics
    assert metrics["test_token_ratio_at_equal_accuracy"] == pytest.approx(300 / 16)
    # each rung's accuracy and tokens, named by route and rung, not only the ratios
    assert metrics["full/rung3-steps/accuracy"] == 1.0
    assert metrics["full/rung0-answer/accuracy"] == 0.0
    assert metrics["full/rung3-steps/test_tokens"] == 300
    assert metrics["enriched-k1/rung0-answer/accuracy"] == 1.0
    assert metrics["enriched-k1/rung0-answer/test_tokens"] == 16
    assert logged.data.params["dataset"] == "gsm8k"
    assert "headline: " in logged.data.tags["mlflow.note.content"]
    experiment = client.get_experiment(logged.info.experiment_id)
    assert experiment.tags["mlflow.experimentKind"] == "custom_model_development"
    artifacts = {a.path for a in client.list_artifacts(run_id)}
    assert {"accuracy_vs_test_tokens.png", "summary.json"} <= artifacts
    assert logged.inputs.dataset_inputs[0].dataset.name == "out"
    # plots under the run folder, none beside the table
    assert (tmp_path / "mlruns" / "reports" / "out" / "accuracy_vs_test_tokens.png").is_file()
    assert not (tmp_path / "out" / "report").exists()


def test_report_warns_when_the_accuracies_it_compares_sit_at_the_floor(
    problems: list[StatefulProblem], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    plan = CollectPlan(sleep_budgets=(1,), rungs_raw=(0, 3), rungs_learned=(0,))
    model = ScriptedModel(problems, never_right=True)
    run_collection(model, "m", "gsm8k", problems, plan, tmp_path / "out", progress=False)
    argv = [str(tmp_path / "out"), "--no-mlflow", "--no-plots", "--bootstrap", "50"]
    assert main(argv) == 0
    captured = capsys.readouterr()
    assert "headline: mean test-time tokens per query at equal accuracy 0.000" in captured.out
    assert "warning: out: the headline compares accuracies at the floor" in captured.err


def test_report_cli_writes_plots_and_json(
    problems: list[StatefulProblem], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    plan = CollectPlan(sleep_budgets=(1,), rungs_raw=(0, 4), rungs_learned=(0,))
    run_collection(
        ScriptedModel(problems), "m", "gsm8k", problems, plan, tmp_path / "out", progress=False
    )
    argv = [str(tmp_path / "out"), "--json", "--no-mlflow", "--bootstrap", "50"]
    assert main([*argv, "--out", str(tmp_path / "plots")]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert all(Path(p).parent == tmp_path / "plots" / "out" for p in summary["plots"])
    for plot in summary["plots"]:
        assert Path(plot).stat().st_size > 10_000
    assert summary["test_token_ratio_at_equal_accuracy"] > 1
    # The scripted model is right on c' at rung 0 and on c at rung 4: the sleep curve reaches
    # the best test-only accuracy, so both ratios read there are numbers.
    assert summary["token_ratio_at_best_test_only_accuracy"] > 1
    assert summary["full_cost_ratio_at_best_test_only_accuracy"] is not None
