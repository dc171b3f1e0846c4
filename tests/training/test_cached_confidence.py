"""The cached-answer estimator on held-out contexts, on constructed feature rows whose
answer is known: agreement that decides correctness is found, noise is not."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from router.predictability import LOGPROB_FEATURE, QUERY_FEATURES
from training import cached_confidence


def rows(contexts: int, signal: str, seed: int = 0, ks: tuple[int, ...] = (1,)) -> list[dict]:
    """Four queries per context. `signal`: "agreement" (right exactly when every pass gave the
    answer), "logprob" (right exactly when log p(q|c) is high) or "none" (one pass, so
    agreement is always 1.0, and right at random)."""
    rng = np.random.default_rng(seed)
    out = []
    for c in range(contexts):
        for q in range(4):
            for k in ks:
                right = bool(rng.random() < 0.5)
                agreed = right if signal == "agreement" else True
                row: dict[str, Any] = {
                    name: float(rng.random()) for name in QUERY_FEATURES if name != "margin"
                } | {
                    "context_id": f"c{c}", "query_id": f"c{c}/q{q}", "sleep_passes": k,
                    "cached_support": 4 if signal == "agreement" else 1,
                    "cached_agreement": 1.0 if agreed else 0.5,
                    "cached_correct": right,
                }  # fmt: skip
                if signal == "logprob":
                    row[LOGPROB_FEATURE] = -0.5 if right else -3.0
                out.append(row)
    return out


def split(data: list[dict]) -> tuple[list[dict], list[dict]]:
    test = {f"c{c}" for c in range(0, 1000, 3)}
    return [r for r in data if r["context_id"] not in test], [
        r for r in data if r["context_id"] in test
    ]


def held_out(data: list[dict]) -> dict[str, Any]:
    train, test = split(data)
    summary, curves = cached_confidence.held_out(
        train, test, kind="logistic", max_wrong=0.05, samples=200
    )
    assert set(curves) == set(summary)
    return summary


def test_agreement_that_decides_the_answer_gives_auc_1_and_a_threshold() -> None:
    cached = held_out(rows(90, "agreement"))["cached"]
    assert cached["auc"] == 1.0 and cached["auc_interval"] == [1.0, 1.0]
    chosen = cached["chosen"]
    assert chosen is not None and chosen["wrong"] == 0.0
    assert chosen["coverage"] == pytest.approx(cached["base_rate"])
    assert cached["best"]["coverage"] >= chosen["coverage"]


def test_one_pass_noise_gives_auc_about_half_and_no_threshold() -> None:
    """A one-pass table: agreement is always 1.0; the estimator still fits, and finds nothing."""
    cached = held_out(rows(150, "none"))["cached"]
    assert abs(cached["auc"] - 0.5) < 0.1
    low, high = cached["auc_interval"]
    assert low < 0.5 < high
    assert cached["chosen"] is None and cached["best"] is None


def test_log_p_is_a_second_estimator_only_where_every_row_has_it() -> None:
    data = rows(90, "logprob")
    summary = held_out(data)
    assert summary["cached_logprob"]["auc"] == 1.0
    assert summary["cached_logprob"]["features"][-1] == LOGPROB_FEATURE
    assert summary["cached"]["auc"] < 0.7  # the request-time features do not see it
    data[0].pop(LOGPROB_FEATURE)
    assert set(held_out(data)) == {"cached"}


def test_each_sleep_budget_has_its_own_figures() -> None:
    cached = held_out(rows(60, "agreement", ks=(1, 4)))["cached"]
    assert set(cached["by_k"]) == {1, 4}
    assert all(f["auc"] == 1.0 and "curve" not in f for f in cached["by_k"].values())
    assert sum(f["rows"] for f in cached["by_k"].values()) == cached["rows"]


def test_the_report_says_none_where_no_threshold_holds() -> None:
    text = cached_confidence.text(held_out(rows(60, "none")))
    assert "threshold from training contexts: none" in text
    text = cached_confidence.text(held_out(rows(60, "agreement")))
    assert "AUC 1.000 [1.000, 1.000]" in text and "0.0% of them wrong" in text
