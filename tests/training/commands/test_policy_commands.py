"""predictability, train and evaluate on a synthetic table whose right answer is known."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from synthetic_outcomes import write_synthetic

from policies import load
from router.predictability import load_models
from training.commands import evaluate as evaluate_cmd
from training.commands import predictability as predictability_cmd
from training.commands import train as train_cmd
from training.commands.logprob import LOGPROBS, LogprobRow
from training.outcomes import write_rows


@pytest.fixture(scope="module")
def table(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_synthetic(tmp_path_factory.mktemp("synthetic") / "t", contexts=100)


def run_json(main, argv: list[str], capsys: pytest.CaptureFixture[str]) -> dict:
    assert main([*argv, "--json"]) == 0
    return json.loads(capsys.readouterr().out)


def test_predictability_separates_predictable_contexts(
    table: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    summary = run_json(
        predictability_cmd.main,
        [str(table), "--no-mlflow", "--save", str(tmp_path / "p.pkl"), "--out", str(tmp_path)],
        capsys,
    )
    assert summary["query_auc"] > 0.95
    assert summary["cached_precision"] == 1.0  # the top half are exactly the predictable ones
    assert summary["cached_coverage_at_max_wrong"] >= 0.45
    assert summary["quintile_gain"][-1] > summary["quintile_gain"][0]
    assert Path(summary["saved"]).stat().st_size > 0


def test_predictability_adds_the_papers_logprob_quintiles(
    table: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Even contexts are the predictable ones; give them the higher log p(q|c)."""
    totals = [-4.0 if i % 2 == 0 else -24.0 for i in range(100)]
    rows = [LogprobRow(f"c{i:03d}", f"c{i:03d}/q0", 8, t, t / 8) for i, t in enumerate(totals)]
    write_rows(table / LOGPROBS, rows, LogprobRow)
    try:
        summary = run_json(
            predictability_cmd.main,
            [str(table), "--no-mlflow", "--save", str(tmp_path / "p.pkl"), "--out", str(tmp_path)],
            capsys,
        )
    finally:
        (table / LOGPROBS).unlink()
    assert summary["logprob_contexts"] == 100
    gains = summary["logprob_quintile_gain"]
    assert len(gains) == 5 and gains[-1] > gains[0] and summary["logprob_spearman"] > 0.5


def test_train_finds_the_cheaper_policy_at_equal_accuracy(
    table: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("SLEEPTIME_MLFLOW_URI", f"sqlite:///{tmp_path}/mlruns/mlflow.db")
    out = tmp_path / "policy.json"
    argv = [
        str(table),
        "--trials",
        "120",
        "--storage",
        str(tmp_path / "optuna.journal"),
        "--out",
        str(out),
    ]
    summary = run_json(train_cmd.main, argv, capsys)
    assert summary["trials"] == 120
    assert summary["test_accuracy"] == 1.0
    assert summary["cost_ratio_at_equal_accuracy"] > 1.3  # built-ins reach 1.0 at best
    assert summary["dominated_by"] == []
    assert load(out).name == "learned"
    models, meta = load_models(Path(summary["estimators_file"]))  # served beside the policy
    assert set(models) == {"cached", "enriched", "context"} and meta["low_rung"] == 0
    again = run_json(train_cmd.main, [*argv[:2], "30", *argv[3:]], capsys)  # adds 30 trials
    assert (again["trials"], again["trials_this_run"]) == (150, 30)


def test_train_can_charge_prompt_tokens_in_its_own_study(
    table: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = [str(table), "--trials", "60", "--storage", str(tmp_path / "optuna.journal"),
            "--out", str(tmp_path / "policy.json"), "--no-mlflow"]  # fmt: skip
    paper = run_json(train_cmd.main, argv, capsys)
    charged = run_json(train_cmd.main, [*argv, "--charge-prompt"], capsys)
    assert charged["study"] != paper["study"] and charged["trials_this_run"] == 60
    assert charged["charge_prompt"] and not paper["charge_prompt"]
    assert charged["test_cost"] == pytest.approx(charged["test_full_cost"])
    assert paper["test_cost"] < paper["test_full_cost"]  # the synthetic table has prompts


def test_evaluate_replays_a_policy_file_beside_the_builtins(
    table: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    policy = tmp_path / "p.json"
    policy.write_text(json.dumps({"name": "threshold", "params": {"cached_threshold": 0.7}}))
    rows = run_json(evaluate_cmd.main, [str(policy), str(table), "--split", "all"], capsys)
    mine = rows["p.json (threshold)"]
    assert mine["cached_share"] == pytest.approx(0.5, abs=0.1)
    assert "test-time-only(rung=3)" in rows
