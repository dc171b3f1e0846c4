"""`sleeptime evaluate --split`: by default the contexts `train` held out, by its seed."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from synthetic_outcomes import write_synthetic

from training.commands import evaluate as evaluate_cmd
from training.commands import train as train_cmd

POLICY = {"name": "threshold", "params": {"cached_threshold": 0.7}}
LABEL = "p.json (threshold)"


@pytest.fixture(scope="module")
def table(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_synthetic(tmp_path_factory.mktemp("synthetic") / "t", contexts=100)


@pytest.fixture
def policy(tmp_path: Path) -> Path:
    path = tmp_path / "p.json"
    path.write_text(json.dumps(POLICY))
    return path


def run_json(main, argv: list[str], capsys: pytest.CaptureFixture[str]) -> dict:
    assert main([*argv, "--json"]) == 0
    return json.loads(capsys.readouterr().out)


def test_the_default_is_the_test_split_and_the_splits_cover_the_table(
    table: Path, policy: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    scopes = {
        split: run_json(evaluate_cmd.main, [str(policy), str(table), "--split", split], capsys)[
            "scope"
        ]
        for split in ("train", "validation", "test", "all")
    }
    default = run_json(evaluate_cmd.main, [str(policy), str(table)], capsys)["scope"]
    assert default == scopes["test"]
    assert [scopes[s]["contexts"] for s in ("train", "validation", "test")] == [60, 20, 20]
    assert sum(scopes[s]["queries"] for s in ("train", "validation", "test")) == (
        scopes["all"]["queries"]
    )


def test_the_seed_chooses_another_test_split(
    table: Path, policy: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = [str(policy), str(table)]
    first = run_json(evaluate_cmd.main, argv, capsys)[LABEL]
    other = run_json(evaluate_cmd.main, [*argv, "--seed", "1"], capsys)[LABEL]
    assert first != other


def test_the_test_split_is_the_one_train_reports_on(
    table: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The same contexts and the same replay: the trained policy scores what train said."""
    out = tmp_path / "trained.json"
    argv = [str(table), "--trials", "5", "--seed", "3", "--no-mlflow", "--out", str(out),
            "--storage", str(tmp_path / "optuna.journal")]  # fmt: skip
    trained = run_json(train_cmd.main, argv, capsys)
    rows = run_json(evaluate_cmd.main, [str(out), str(table), "--seed", "3"], capsys)
    assert rows["scope"]["contexts"] == trained["test_contexts"]
    assert rows["scope"]["queries"] == trained["test_queries"]
    assert rows[f"{out.name} (learned)"]["accuracy"] == pytest.approx(trained["test_accuracy"])
    assert rows[f"{out.name} (learned)"]["cost"] == pytest.approx(trained["test_cost"])


def test_the_text_says_which_split_and_how_many_contexts(
    table: Path, policy: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert evaluate_cmd.main([str(policy), str(table), "--seed", "2"]) == 0
    first = capsys.readouterr().out.splitlines()[0]
    assert first.startswith("the test split of `train --seed 2`: ")
    assert "20 of 100 contexts" in first
