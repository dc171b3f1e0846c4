"""A synthetic outcome table with a known answer: even contexts are predictable (their
sleep pass anticipated the exact question and answered it), odd ones are not."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from training.outcome_features import FEATURES, build_features, write_features
from training.outcomes import CONTEXTS, OUTCOMES, SLEEP, Outcome, write_jsonl, write_outcomes

WORDS = ["apples", "trains", "money", "eggs", "pages", "miles", "boxes", "hours", "cats", "cups"]


def encode(texts: list[str]) -> np.ndarray:
    vectors = np.array([[t.count(w) for w in WORDS] for t in texts], dtype=float) + 1e-3
    return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)


def write_synthetic(folder: Path, contexts: int = 40) -> Path:
    folder.mkdir(parents=True)
    problems, passes, rows = [], [], []
    for i in range(contexts):
        cid, word, gold = f"c{i:03d}", WORDS[i % len(WORDS)], str(10 + i)
        predictable = i % 2 == 0
        question = f"How many {word} are there in total?"
        problems.append(
            {
                "id": cid,
                "context": f"Some {word}. More {word}.",
                "source": "synthetic",
                "queries": [
                    {"id": f"{cid}/q0", "question": question, "answer": gold, "kind": "final"}
                ],
            }
        )
        asked = question if predictable else f"How many {WORDS[(i + 5) % len(WORDS)]} left?"
        passes.append(
            {
                "context_id": cid,
                "pass": 0,
                "truncated": False,
                "completion_tokens": 200,
                "anticipated": [{"question": asked, "answer": gold if predictable else "1"}],
            }
        )
        base = dict(
            dataset="synthetic",
            context_id=cid,
            query_id=f"{cid}/q0",
            query_kind="final",
            queries_in_context=1,
            truncated=False,
            predicted="",
            gold=gold,
            test_prompt_tokens=100,
            test_cached_prompt_tokens=0,
            test_latency_s=0.1,
        )
        rows += [
            Outcome(
                **base,
                sleep_passes=0,
                rung=0,
                correct=False,
                test_completion_tokens=5,
                sleep_prompt_tokens=0,
                sleep_completion_tokens=0,
                sleep_latency_s=0,
            ),
            Outcome(
                **base,
                sleep_passes=0,
                rung=3,
                correct=True,
                test_completion_tokens=300,
                sleep_prompt_tokens=0,
                sleep_completion_tokens=0,
                sleep_latency_s=0,
            ),
            Outcome(
                **base,
                sleep_passes=1,
                rung=0,
                correct=predictable,
                test_completion_tokens=5,
                sleep_prompt_tokens=150,
                sleep_completion_tokens=200,
                sleep_latency_s=5,
            ),
            Outcome(
                **base,
                sleep_passes=1,
                rung=3,
                correct=True,
                test_completion_tokens=280,
                sleep_prompt_tokens=150,
                sleep_completion_tokens=200,
                sleep_latency_s=5,
            ),
        ]
    write_jsonl(folder / CONTEXTS, problems)
    write_jsonl(folder / SLEEP, passes)
    write_outcomes(folder / OUTCOMES, rows)
    write_features(folder / FEATURES, build_features(folder, encode))
    return folder
