from pathlib import Path

import numpy as np
from outcome_rows import outcome_row

from training.outcome_features import build_features, read_features, write_features
from training.outcomes import CONTEXTS, OUTCOMES, SLEEP, write_jsonl, write_outcomes

VOCAB = ["eggs", "sell", "day", "money", "market", "breakfast", "eat", "week"]


def bag_of_words(texts: list[str]) -> np.ndarray:
    """A deterministic stand-in for sentence embeddings (the real model is tested in router/)."""
    vectors = np.array([[t.lower().count(w) for w in VOCAB] for t in texts], dtype=float) + 1e-3
    return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)


def make_table(folder: Path) -> None:
    folder.mkdir()
    queries = [
        {
            "id": "c1/q0",
            "question": "How much money at the market each day?",
            "answer": "18",
            "kind": "final",
        },
        {
            "id": "c1/q1",
            "question": "How many eggs does she eat for breakfast?",
            "answer": "3",
            "kind": "sub",
        },
    ]
    write_jsonl(
        folder / CONTEXTS,
        [
            {
                "id": "c1",
                "context": "Ducks lay 16 eggs. She eats 3.",
                "queries": queries,
                "source": "t",
            }
        ],
    )
    passes = [
        {
            "pass": 0,
            "truncated": False,
            "anticipated": [
                {
                    "question": "How much money does she make at the market each day?",
                    "answer": "18",
                },
                {"question": "How many eggs does she eat?", "answer": "4"},
            ],
        },
        {
            "pass": 1,
            "truncated": True,
            "anticipated": [
                {"question": "How much money does she make at the market each day?", "answer": "18"}
            ],
        },
    ]
    write_jsonl(folder / SLEEP, [p | {"context_id": "c1"} for p in passes])
    write_outcomes(
        folder / OUTCOMES,
        [
            outcome_row("c1", "c1/q0", k, 0, True, 1, dataset="t", predicted="18", gold="18",
                        prompt=1)
            for k in (0, 1, 2)
        ],
    )  # fmt: skip


def test_nearest_anticipated_answer_is_the_cached_outcome(tmp_path: Path) -> None:
    make_table(tmp_path / "t")
    rows = {(r.query_id, r.sleep_passes): r for r in build_features(tmp_path / "t", bag_of_words)}
    assert set(rows) == {("c1/q0", 1), ("c1/q1", 1), ("c1/q0", 2), ("c1/q1", 2)}
    money, eggs = rows[("c1/q0", 2)], rows[("c1/q1", 1)]
    assert money.cached_answer == "18" and money.cached_correct
    assert money.cached_support == 2 and money.cached_agreement == 1.0
    assert money.similarity > money.second_similarity
    assert eggs.cached_answer == "4" and not eggs.cached_correct
    assert rows[("c1/q0", 1)].truncated_passes == 0 and rows[("c1/q0", 2)].truncated_passes == 1
    assert rows[("c1/q0", 1)].n_anticipated == 2


def test_features_round_trip(tmp_path: Path) -> None:
    make_table(tmp_path / "t")
    rows = build_features(tmp_path / "t", bag_of_words)
    write_features(tmp_path / "f.csv.gz", rows)
    back = read_features(tmp_path / "f.csv.gz")
    assert [r.query_id for r in back] == [r.query_id for r in rows]
    assert back[0].similarity == rows[0].similarity
    assert back[0].cached_correct == rows[0].cached_correct
