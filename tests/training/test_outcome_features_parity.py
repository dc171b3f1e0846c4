"""Training's feature table and the proxy's request features are the same numbers: the
cached-answer estimator is scored online on the agreement it was fit on offline."""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path

import numpy as np
import pytest
from outcome_rows import outcome_row

from policies import Threshold
from router.policy_router import PolicyRouter
from router.predictability import QUERY_FEATURES
from router.store.base import ContextRecord
from training.outcome_features import anticipated_for, build_features
from training.outcomes import CONTEXTS, OUTCOMES, SLEEP, write_jsonl, write_outcomes

WORDS = ["eggs", "money", "market", "breakfast", "sell", "day"]
TEXT = "Ducks lay 16 eggs a day. She eats 3 for breakfast and sells the rest for $2."
QUERIES = ["How much money at the market each day?", "How many eggs for breakfast?"]


def encode(texts: list[str]) -> np.ndarray:
    vectors = np.array([[t.lower().count(w) for w in WORDS] for t in texts], float) + 1e-3
    return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)


def passes() -> list[dict]:
    """Three passes that disagree on the money question (26, 26, 18): agreement 2/3."""
    money = "How much money does she make at the market each day?"
    answers = ["26", "26", "18"]
    return [
        {"context_id": "c1", "pass": i, "truncated": i == 2,
         "anticipated": [{"question": money, "answer": a}]
         + ([{"question": "How many eggs does she eat for breakfast?", "answer": "3"}]
            if i == 0 else [])}
        for i, a in enumerate(answers)
    ]  # fmt: skip


def table(folder: Path) -> Path:
    folder.mkdir()
    queries = [{"id": f"c1/q{i}", "question": q, "answer": "18", "kind": "sub"}
               for i, q in enumerate(QUERIES)]  # fmt: skip
    write_jsonl(folder / CONTEXTS, [{"id": "c1", "context": TEXT, "queries": queries}])
    write_jsonl(folder / SLEEP, passes())
    rows = [
        outcome_row("c1", q["id"], k, 0, True, 1, dataset="t", kind="sub", predicted="18",
                    gold="18", prompt=1)
        for q in queries
        for k in (0, 1, 3)
    ]  # fmt: skip
    write_outcomes(folder / OUTCOMES, rows)
    return folder


@pytest.mark.parametrize("k", [1, 3])
def test_serving_computes_the_features_training_fit_on(tmp_path: Path, k: int) -> None:
    rows = [r for r in build_features(table(tmp_path / "t"), encode) if r.sleep_passes == k]
    anticipated = [asdict(a) for a in anticipated_for(passes(), k)]
    record = ContextRecord("t", "c1", 1, TEXT, "explicit", 2, "done", "notes", anticipated, 0,
                           None, 0.0, truncated_passes=sum(p["pass"] < k and p["truncated"]
                                                          for p in passes()))  # fmt: skip
    router = PolicyRouter(Threshold(), {}, encode)
    for row in rows:
        served, nearest = router.features(record, QUERIES[int(row.query_id[-1])])
        trained = vars(row) | {"margin": row.similarity - row.second_similarity}
        for name in QUERY_FEATURES:
            served_value = served.get(name, served["similarity"] - served["second_similarity"])
            assert served_value == pytest.approx(trained[name]), name
        assert nearest["answer"] == row.cached_answer
    money = next(r for r in rows if r.query_id == "c1/q0")
    assert (money.cached_support, money.cached_agreement) == ((3, 2 / 3) if k == 3 else (1, 1.0))
