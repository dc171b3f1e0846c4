"""`sleeptime predictability` on constructed feature tables whose answer is known: the
cached route's held-out AUC, its interval and its threshold at 5 in 100 wrong, in --json,
in the printed report and as a PNG."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from outcome_rows import outcome_row

from training import cached_confidence
from training.commands import predictability
from training.commands.logprob import LOGPROBS, LogprobRow
from training.outcome_features import FEATURES, QueryFeatureRow, write_features
from training.outcomes import OUTCOMES, Outcome, write_outcomes, write_rows

CONTEXTS, QUERIES = 60, 4


def constructed(folder: Path, signal: bool, seed: int = 0) -> Path:
    """Right exactly when the passes agreed (signal), or at random on a one-pass table where
    agreement is always 1.0 (no signal). Everything else is noise."""
    rng = np.random.default_rng(seed)
    features, outcomes = [], []
    for c in range(CONTEXTS):
        for q in range(QUERIES):
            cid, qid, right = f"c{c:03d}", f"c{c:03d}/q{q}", bool(rng.random() < 0.5)
            agreed = right if signal else True
            features.append(QueryFeatureRow(
                cid, qid, 1, float(rng.random()), float(rng.random() * 0.5), "7",
                4 if signal else 1, 1.0 if agreed else 0.5, right, int(rng.integers(2, 6)),
                float(rng.random()), float(rng.random()), 0, int(rng.integers(40, 90)),
                int(rng.integers(3, 9)), int(rng.integers(5, 15)),
            ))  # fmt: skip
            outcomes += [_outcome(cid, qid, k, bool(rng.random() < 0.5)) for k in (0, 1)]
    folder.mkdir(parents=True)
    write_features(folder / FEATURES, features)
    write_outcomes(folder / OUTCOMES, outcomes)
    return folder


def _outcome(context_id: str, query_id: str, k: int, correct: bool) -> Outcome:
    return outcome_row(context_id, query_id, k, 0, correct, 5, dataset="constructed",
                       kind="sub", queries=QUERIES, predicted="7", gold="7",
                       sleep_prompt=200 * k, sleep=150 * k, sleep_latency=1.0 * k)  # fmt: skip


def run(folder: Path, out: Path, capsys: pytest.CaptureFixture[str]) -> tuple[dict, str]:
    """The --json summary, and the cached route's lines of the printed report."""
    assert predictability.main([str(folder), "--no-mlflow", "--out", str(out), "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    return summary, cached_confidence.text(summary["cached_route"])


def test_a_perfect_agreement_gives_auc_1_and_a_threshold(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    summary, text = run(constructed(tmp_path / "t", signal=True), tmp_path / "o", capsys)
    cached = summary["cached_route"]["cached"]
    assert cached["auc"] == 1.0 and cached["auc_interval"] == [1.0, 1.0]
    assert cached["contexts"] == summary["test_contexts"] == 24  # split by context, 40% held
    assert cached["chosen"]["wrong"] == 0.0 and cached["chosen"]["served"] >= 20
    best = cached["best"]  # every right answer, and wrong ones while they stay <= 5 in 100
    assert best["wrong"] <= 0.05 and best["coverage"] * (1 - best["wrong"]) == pytest.approx(
        cached["base_rate"]
    )
    assert summary["cached_coverage_at_max_wrong"] == cached["best"]["coverage"]
    assert cached["curve"][0]["coverage"] < cached["curve"][-1]["coverage"] == 1.0
    assert "cached_logprob" not in summary["cached_route"]  # no logprobs.csv.gz here
    png = Path(summary["precision_coverage_plot"])
    assert png == tmp_path / "o" / "predictability_cached.png"
    assert png.read_bytes()[:4] == b"\x89PNG"
    assert "AUC 1.000 [1.000, 1.000]" in text and "0.0% of them wrong" in text


def test_a_one_pass_table_gives_auc_about_half_and_no_threshold(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = constructed(tmp_path / "t", signal=False, seed=1)
    rows = [LogprobRow(f"c{c:03d}", f"c{c:03d}/q{q}", 8, -8.0, -1.0 - (c * q) % 3)
            for c in range(CONTEXTS) for q in range(QUERIES)]  # fmt: skip
    write_rows(folder / LOGPROBS, rows, LogprobRow)
    summary, text = run(folder, tmp_path / "o", capsys)
    route = summary["cached_route"]
    assert set(route) == {"cached", "cached_logprob"}  # log p(q|c) where the table has it
    for figures in route.values():
        low, high = figures["auc_interval"]
        assert abs(figures["auc"] - 0.5) < 0.15 and low < 0.5 < high
        assert figures["chosen"] is None and figures["best"] is None
    assert summary["cached_coverage_at_max_wrong"] == 0.0
    assert summary["query_auc"] == route["cached"]["auc"]  # the one cached estimator, scored
    assert text.count("threshold from training contexts: none") == 2
