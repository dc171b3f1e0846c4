from dataclasses import dataclass

import pytest

from router.errors import ConfigError
from router.sleep import (
    Anticipated,
    SleepBudget,
    combine,
    run_sleep,
    sleep_messages,
    vote,
)
from router.sleep_parse import parse_pass

CLEAN = """NOTES:
- Eggs laid per day: 16
- Eggs left each day: 16 - 3 - 4 = 9
QUESTIONS:
Q: How much does Janet make every day at the market?
Work: 9 * 2 = 18
A: $18
Q: How many eggs does she eat in a week?
Work: 3 * 7 = 21
A: 21 eggs
"""


def test_vote_merges_same_question_and_measures_agreement() -> None:
    merged = vote(
        [
            Anticipated("How many eggs are left?", "9"),
            Anticipated("how many eggs are left", "9.0"),
            Anticipated("How many eggs are left?", "8"),
            Anticipated("What is the price?", "2"),
        ]
    )
    assert merged[0].question == "How many eggs are left?"
    assert (merged[0].answer, merged[0].support) == ("9", 3)
    assert abs(merged[0].agreement - 2 / 3) < 1e-9
    assert (merged[1].support, merged[1].agreement) == (1, 1.0)


def test_combine_keeps_each_note_and_question_once_across_passes() -> None:
    """k passes no longer concatenate "Notes, version i" blocks (k times the prompt)."""
    text, anticipated = combine([parse_pass(CLEAN), parse_pass(""), parse_pass(CLEAN)])
    assert "version" not in text
    assert text.count("Eggs left each day") == 1
    assert text.count("Q: How much does Janet make every day at the market? A: 18") == 1
    assert anticipated[0].support == 2


@dataclass
class FakeUsage:
    prompt_tokens: int
    completion_tokens: int
    cached_prompt_tokens: int = 0


@dataclass
class FakeResult:
    text: str
    finish_reason: str
    usage: FakeUsage
    latency_s: float = 0.5


class FakeBackend:
    def __init__(self, replies: list[FakeResult]) -> None:
        self.replies = replies
        self.calls: list[dict] = []

    def chat(self, messages: list[dict], *, model: str, **params: object) -> FakeResult:
        self.calls.append({"messages": messages, "model": model, **params})
        return self.replies.pop(0)


def test_run_sleep_samples_k_passes_with_diversity_and_sums_tokens() -> None:
    backend = FakeBackend(
        [
            FakeResult(CLEAN, "stop", FakeUsage(100, 50)),
            FakeResult("cut off mid-", "length", FakeUsage(100, 64)),
        ]
    )
    learned = run_sleep(backend, "m", "Janet's ducks lay 16 eggs.", SleepBudget(passes=2))
    assert [c["seed"] for c in backend.calls] == [0, 1]
    assert [c["temperature"] > 0 for c in backend.calls] == [False, True]
    assert (learned.prompt_tokens, learned.completion_tokens) == (200, 114)
    assert (learned.truncated_passes, learned.empty_passes) == (0 + 1, 0)
    assert "Janet's ducks lay 16 eggs." in backend.calls[0]["messages"][1]["content"]


def test_single_pass_is_greedy() -> None:
    backend = FakeBackend([FakeResult(CLEAN, "stop", FakeUsage(1, 1))])
    run_sleep(backend, "m", "ctx", SleepBudget(passes=1))
    assert backend.calls[0]["temperature"] == 0.0
    assert sleep_messages("ctx", 5)[1]["content"].count("5 questions") == 1


PROGRAM = """```python
eggs_sold = 16 - 3 - 4  # How many eggs does Janet sell each day?
money = eggs_sold * 2  # How much does she make every day?
broken = money / 0  # never mind
```"""


def test_a_program_pass_is_computed_not_trusted() -> None:
    backend = FakeBackend([FakeResult(PROGRAM, "stop", FakeUsage(80, 40))])
    learned = run_sleep(backend, "m", "ctx", SleepBudget(prompt="program"))
    assert [(a.question, a.answer) for a in learned.anticipated] == [
        ("How many eggs does Janet sell each day?", "9"),
        ("How much does she make every day?", "18"),
    ]
    assert "money = eggs_sold * 2 = 18" in learned.text
    assert "Q: How much does she make every day? A: 18" in learned.text
    assert "Python code" in backend.calls[0]["messages"][1]["content"]
    assert parse_pass(PROGRAM, "program").rejected == 1
    assert parse_pass(PROGRAM).anticipated == ()  # the solve layout reads no code


def test_an_unknown_sleep_prompt_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="program"):
        SleepBudget(prompt="nonsense")
