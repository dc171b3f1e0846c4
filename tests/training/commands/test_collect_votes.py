"""`collect --adaptive` and `--sleep-from`, through `collect.main` against a fake upstream
over real HTTP (the real openai client, the real response cache)."""

from __future__ import annotations

import gzip
import json
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from fake_upstream import FakeUpstream, Recorded, Reply, completion, json_reply, usage_body

from router.errors import ConfigError
from router.sleep import SYSTEM as SLEEP_SYSTEM
from training.commands.collect import main
from training.outcomes import OUTCOMES, RUN, SLEEP, Outcome, read_jsonl, read_outcomes

# The easy context's passes all agree; the hard one's settle at the fourth (1, 2, 3, 3).
ANSWERS = {"easy": ["9", "9", "9", "9"], "hard": ["1", "2", "3", "3"]}


def scripted(request: Recorded) -> Reply:
    if request.method == "GET":
        return json_reply({"object": "list", "data": [{"id": "big-model", "object": "model"}]})
    asked = request.json
    prompt = asked["messages"][-1]["content"]
    if asked["messages"][0]["content"] == SLEEP_SYSTEM:
        answer = ANSWERS["easy" if "EASY" in prompt else "hard"][int(asked["seed"])]
        text = f"NOTES:\n- Eggs left: 9\nQUESTIONS:\nQ: How many eggs are left?\nA: {answer}"
        if "Q1: How many eggs are left?" in prompt:  # --reask: pass 0's question again
            text = f"Q1: How many eggs remain?\nWork: 16 - 7\nA1: {answer}"
        return completion(text, usage=usage_body(100, 50))
    return completion("Answer: 9", usage=usage_body(20, 5))


@pytest.fixture
def upstream() -> Iterator[FakeUpstream]:
    with FakeUpstream(scripted) as server:
        yield server


@pytest.fixture
def dataset(tmp_path: Path) -> Path:
    path = tmp_path / "two.jsonl"
    lines = [
        {"id": "easy", "context": "EASY: 16 eggs, 7 used.", "queries": [{"question": "Left?"}]},
        {"id": "hard", "context": "HARD: 20 eggs, 11 used.", "queries": [{"question": "Left?"}]},
    ]
    for line in lines:
        line["queries"][0]["answer"] = "9"
    path.write_text("\n".join(json.dumps(line) for line in lines) + "\n")
    return path


def collect(upstream: FakeUpstream, dataset: Path, out: Path, *flags: str) -> dict[str, Outcome]:
    argv = ["--dataset", str(dataset), "--out", str(out), "--upstream-url", upstream.url]
    argv += ["--cache", str(out.parent / f"{out.name}.sqlite"), "--rungs-raw", "0"]
    assert main([*argv, "--rungs-learned", "0", "--json", *flags]) == 0
    rows = read_outcomes(out / OUTCOMES)
    return {f"{r.context_id}/k{r.sleep_passes}": r for r in rows}


def sleep_calls(upstream: FakeUpstream) -> list[tuple[str, int]]:
    calls = [r.json for r in upstream.requests if r.method == "POST"]
    return [
        ("easy" if "EASY" in c["messages"][-1]["content"] else "hard", c["seed"])
        for c in calls
        if c["messages"][0]["content"] == SLEEP_SYSTEM
    ]


def test_adaptive_budgets_are_caps_and_record_the_passes_spent(
    upstream: FakeUpstream, dataset: Path, tmp_path: Path
) -> None:
    rows = collect(upstream, dataset, tmp_path / "out", "--sleep-budgets", "1,2,4", "--adaptive")
    spent = {key: r.sleep_passes_spent for key, r in rows.items() if r.sleep_passes}
    assert spent == {"easy/k1": 1, "easy/k2": 2, "easy/k4": 2} | {
        "hard/k1": 1, "hard/k2": 2, "hard/k4": 4,
    }  # fmt: skip
    assert sorted(sleep_calls(upstream)) == [("easy", 0), ("easy", 1)] + [
        ("hard", i) for i in range(4)
    ]
    assert rows["easy/k4"].sleep_completion_tokens == 100  # two passes of 50, not four
    assert rows["easy/k4"].sleep_model == rows["easy/k4"].test_model == "big-model"
    assert rows["easy/k0"].sleep_model == "" and rows["easy/k0"].sleep_passes_spent == 0
    passes = [(s["context_id"], s["pass"]) for s in read_jsonl(tmp_path / "out" / SLEEP)]
    assert passes == [("easy", 0), ("easy", 1)] + [("hard", i) for i in range(4)]
    assert json.loads((tmp_path / "out" / RUN).read_text())["plan"]["sleep"]["adaptive"]


def test_fixed_budgets_spend_every_pass(
    upstream: FakeUpstream, dataset: Path, tmp_path: Path
) -> None:
    rows = collect(upstream, dataset, tmp_path / "out", "--sleep-budgets", "1,4")
    assert {k: r.sleep_passes_spent for k, r in rows.items()} == {
        "easy/k0": 0, "easy/k1": 1, "easy/k4": 4, "hard/k0": 0, "hard/k1": 1, "hard/k4": 4,
    }  # fmt: skip
    assert len(sleep_calls(upstream)) == 8


def test_sleep_from_answers_on_another_tables_passes_without_sleeping(
    upstream: FakeUpstream, dataset: Path, tmp_path: Path
) -> None:
    big = tmp_path / "big"
    collect(upstream, dataset, big, "--sleep-budgets", "4")
    made = len(sleep_calls(upstream))
    flags = ["--sleep-budgets", "4", "--adaptive", "--upstream-model", "small-model"]
    rows = collect(upstream, dataset, tmp_path / "small", *flags, "--sleep-from", str(big))
    assert len(sleep_calls(upstream)) == made  # not one pass more
    easy = rows["easy/k4"]
    assert (easy.test_model, easy.sleep_model, easy.sleep_passes_spent) == (
        "small-model",
        "big-model",
        2,
    )
    assert easy.sleep_completion_tokens == 100  # what the big model spent
    answered = [r.json for r in upstream.requests if r.json and r.json["model"] == "small-model"]
    assert any("Q: How many eggs are left? A: 9" in a["messages"][-1]["content"] for a in answered)
    run = json.loads((tmp_path / "small" / RUN).read_text())
    assert (run["model"], run["sleep_model"]) == ("small-model", "big-model")


def test_sleep_from_reads_a_plain_jsonl_and_needs_enough_passes(
    upstream: FakeUpstream, dataset: Path, tmp_path: Path
) -> None:
    big = tmp_path / "big"
    collect(upstream, dataset, big, "--sleep-budgets", "2")
    plain = tmp_path / "plain"
    plain.mkdir()
    shutil.copy(big / RUN, plain / RUN)
    with gzip.open(big / SLEEP, "rb") as packed:
        (plain / SLEEP.removesuffix(".gz")).write_bytes(packed.read())
    rows = collect(
        upstream, dataset, tmp_path / "a", "--sleep-budgets", "2", "--sleep-from", str(plain)
    )
    assert rows["hard/k2"].sleep_model == "big-model"
    with pytest.raises(ConfigError, match=r"'(easy|hard)' has 2 sleep passes; pass 2 is needed"):
        collect(upstream, dataset, tmp_path / "b", "--sleep-budgets", "3", "--sleep-from", str(big))


def test_sleep_from_a_table_without_a_context_names_it_before_any_call(
    upstream: FakeUpstream, dataset: Path, tmp_path: Path
) -> None:
    one = tmp_path / "one"
    collect(upstream, dataset, one, "--limit", "1")
    before = len(upstream.requests)
    with pytest.raises(ConfigError, match="no sleep passes for context 'hard'"):
        collect(upstream, dataset, tmp_path / "two", "--sleep-from", str(one))
    assert len(upstream.requests) == before


def test_sleep_from_a_table_of_other_texts_is_refused(
    upstream: FakeUpstream, dataset: Path, tmp_path: Path
) -> None:
    collect(upstream, dataset, tmp_path / "big")
    changed = tmp_path / "changed.jsonl"
    changed.write_text(dataset.read_text().replace("16 eggs", "17 eggs"))
    with pytest.raises(ConfigError, match="context 'easy' has another text there"):
        collect(upstream, changed, tmp_path / "two", "--sleep-from", str(tmp_path / "big"))


def test_reasked_passes_answer_pass_0s_question_and_settle_on_it(
    upstream: FakeUpstream, dataset: Path, tmp_path: Path
) -> None:
    rows = collect(
        upstream, dataset, tmp_path / "out", "--sleep-budgets", "4", "--adaptive", "--reask"
    )
    assert rows["easy/k4"].sleep_passes_spent == 2 and rows["hard/k4"].sleep_passes_spent == 4
    records = [s for s in read_jsonl(tmp_path / "out" / SLEEP) if s["context_id"] == "hard"]
    questions = {a["question"] for s in records for a in s["anticipated"]}
    assert questions == {"How many eggs are left?"}  # the model's rewording is not kept
    assert [s["notes"] for s in records[1:]] == [[], [], []]
    assert json.loads((tmp_path / "out" / RUN).read_text())["plan"]["sleep"]["reask"]


def test_sleep_from_a_reask_table_reads_its_passes_against_pass_0s_questions(
    upstream: FakeUpstream, dataset: Path, tmp_path: Path
) -> None:
    """The hard context's re-asked passes (1, 2, 3, 3 after pass 0) vote as they did when
    collected: on pass 0's wording, settled at the fourth pass, not on the model's copy."""
    big = tmp_path / "big"
    collect(upstream, dataset, big, "--sleep-budgets", "4", "--reask")
    flags = ["--sleep-budgets", "4", "--adaptive", "--upstream-model", "small-model"]
    rows = collect(upstream, dataset, tmp_path / "small", *flags, "--sleep-from", str(big))
    assert rows["hard/k4"].sleep_passes_spent == 4 and rows["easy/k4"].sleep_passes_spent == 2
    answered = [r.json for r in upstream.requests if r.json and r.json["model"] == "small-model"]
    hard = [a["messages"][-1]["content"] for a in answered if "HARD" in json.dumps(a)]
    assert any("Q: How many eggs are left? A: 3" in text for text in hard)
    assert not any("remain" in text for text in hard)
    assert json.loads((tmp_path / "small" / RUN).read_text())["plan"]["sleep"]["reask"]
