"""`report` on a table with several sleep budgets: the k curve in `--json`, in the text and
as a PNG beside the other plots; a table with one budget reports none."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from outcome_rows import outcome_row

from training.commands.report import main
from training.outcome_features import FEATURES, QueryFeatureRow, write_features
from training.outcomes import OUTCOMES, RUN, write_outcomes


def write_table(folder: Path, budgets: tuple[int, ...]) -> Path:
    """Eight contexts of two queries; on c' a context's queries are right from k = its
    index mod 3 + 1 on, so accuracy rises with k; the cached answer is right from k = 4."""
    rows, features = [], []
    for c in range(8):
        for q in range(2):
            qid = f"c{c}/q{q}"
            for k in (0, *budgets):
                ok = bool(k) and k >= c % 3 + 1
                rows.append(outcome_row(f"c{c}", qid, k, 0, ok, 5, sleep_prompt=80 * k,
                                        sleep=150 * k, sleep_latency=1.0))  # fmt: skip
                if k:
                    features.append(QueryFeatureRow(f"c{c}", qid, k, 0.9, 0.1, "1", 1, 1.0,
                                                    k >= 4, 1, 1.0, 1.0, 0, 10, 2))  # fmt: skip
    folder.mkdir()
    write_outcomes(folder / OUTCOMES, rows)
    write_features(folder / FEATURES, features)
    (folder / RUN).write_text(json.dumps({"model": "m"}))
    return folder


def test_several_budgets_give_the_k_curve_its_gain_and_its_plot(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    table = write_table(tmp_path / "t", (1, 2, 4))
    argv = [str(table), "--json", "--no-mlflow", "--bootstrap", "100"]
    assert main([*argv, "--out", str(tmp_path / "plots")]) == 0
    summary = json.loads(capsys.readouterr().out)
    curve = summary["k_curve"]
    accuracy = [p["accuracy"]["0"]["mean"] for p in curve["points"]]
    assert accuracy == pytest.approx([3 / 8, 6 / 8, 1.0])
    assert [p["sleep_tokens"] for p in curve["points"]] == [150, 300, 600]
    assert [p["cached_correct"]["mean"] for p in curve["points"]] == [0, 0, 1]
    gain = curve["gains"]["rung_0"]
    assert gain["best_k"] == 4 and gain["gain"]["mean"] == pytest.approx(5 / 8)
    assert 0 < gain["gain"]["low"] <= gain["gain"]["high"] <= 1
    plot = tmp_path / "plots" / "t" / "k_curve.png"
    assert str(plot) in summary["plots"] and plot.stat().st_size > 10_000


def test_the_text_report_reads_the_k_curve(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    table = write_table(tmp_path / "t", (1, 2))
    assert main([str(table), "--no-mlflow", "--no-plots", "--bootstrap", "50"]) == 0
    out = capsys.readouterr().out
    assert "k curve (fixed sleep budgets):" in out
    assert "gain rung_0 from k=1 to the best k=2: +0.375" in out


def test_one_budget_has_no_k_curve_and_no_k_curve_plot(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    table = write_table(tmp_path / "t", (1,))
    argv = [str(table), "--json", "--no-mlflow", "--bootstrap", "50"]
    assert main([*argv, "--out", str(tmp_path / "plots")]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert "k_curve" not in summary
    assert not (tmp_path / "plots" / "t" / "k_curve.png").exists()
