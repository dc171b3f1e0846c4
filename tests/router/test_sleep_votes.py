"""Voted sleep passes: one pass's text pinned byte for byte, k passes merged, adaptive stopping."""

from __future__ import annotations

from router.answer_formats import answer_format
from router.anticipated import Anticipated
from router.sleep import PassResult, SleepBudget, learned_context, run_sleep
from router.sleep_parse import parse_pass
from router.sleep_votes import ParsedPass, combine, passes_needed, settled
from router.upstream import ChatResult, Usage

ONE_PASS = """NOTES:
- Eggs laid per day: 16
- Eggs left each day: 16 - 3 - 4 = 9
QUESTIONS:
Q: How much does Janet make every day?
Work: 9 * 2 = 18
A: $18
Q: How many eggs are left?
A: 9
Q: How much does Janet make every day?
A: 20
"""
# The text one pass has always given (the committed GSM8K tables were collected with it):
# the pass's own order, a question asked twice listed twice, nothing voted away.
ONE_PASS_TEXT = (
    "Notes:\n"
    "- Eggs laid per day: 16\n"
    "- Eggs left each day: 16 - 3 - 4 = 9\n"
    "- Q: How much does Janet make every day? A: 18\n"
    "- Q: How many eggs are left? A: 9\n"
    "- Q: How much does Janet make every day? A: 20"
)


def asked(*pairs: tuple[str, str], notes: tuple[str, ...] = ()) -> ParsedPass:
    return ParsedPass(notes, tuple(Anticipated(q, a) for q, a in pairs), 0)


def test_one_pass_gives_the_text_it_always_gave_byte_for_byte() -> None:
    assert combine([parse_pass(ONE_PASS)])[0] == ONE_PASS_TEXT
    one = PassResult(0, ONE_PASS, parse_pass(ONE_PASS), 10, 20, False, 0.1)
    assert learned_context([one]).text == ONE_PASS_TEXT
    assert combine([parse_pass("")])[0] == ""


def test_k_passes_keep_each_question_once_with_its_majority_answer() -> None:
    passes = [
        asked(("How much a day?", "18"), notes=("Eggs left: 9", "Price: 2")),
        asked(("how much a day", "18.0"), notes=("eggs  LEFT: 9", "Weekly: 126")),
        asked(("How much a day?", "20"), ("What is left?", "5")),
    ]
    text, anticipated = combine(passes)
    assert text == (
        "Notes:\n- Eggs left: 9\n- Price: 2\n- Weekly: 126\n"
        "- Q: How much a day? A: 18\n- Q: What is left? A: 5"
    )
    first = anticipated[0]
    assert (first.answer, first.support, round(first.agreement, 3)) == ("18", 3, 0.667)
    assert combine([asked(), asked()])[0] == ""


def test_settled_needs_two_passes_agreeing_on_every_question_both_asked() -> None:
    q1, q2 = "How many eggs?", "What price?"
    assert not settled([])
    assert not settled([asked((q1, "9"))])  # one pass has shown no agreement
    assert settled([asked((q1, "9"), (q2, "2")), asked(("how many eggs", "9.0"), (q2, "2"))])
    assert not settled([asked((q1, "9"), (q2, "2")), asked((q1, "9"), (q2, "3"))])
    assert not settled([asked((q1, "9")), asked((q2, "2"))])  # nothing in common
    assert settled([asked((q1, "9"), (q2, "7")), asked((q1, "9"))])  # q2 says nothing
    assert settled([asked((q1, "8")), asked((q1, "9")), asked((q1, "9"))])  # the last two
    assert not settled([asked((q1, "9")), asked((q1, "9")), asked((q1, "8"))])


def test_settled_reads_answers_as_the_format_votes_them() -> None:
    q = "What was the revenue?"
    spans = [asked((q, "1,200 million")), asked((q, "1200 million"))]
    assert settled(spans, answer_format("span").vote_key)
    assert not settled([asked((q, "Paris")), asked((q, "London"))], answer_format("span").vote_key)


def test_passes_needed_is_the_first_settled_count_within_the_cap() -> None:
    q = "How many?"
    easy = [asked((q, "9")), asked((q, "9")), asked((q, "9")), asked((q, "9"))]
    hard = [asked((q, "1")), asked((q, "2")), asked((q, "3")), asked((q, "3"))]
    assert [passes_needed(easy, cap) for cap in (1, 2, 4, 8)] == [1, 2, 2, 2]
    assert [passes_needed(hard, cap) for cap in (1, 2, 3, 4)] == [1, 2, 3, 4]


class Scripted:
    """Each call's reply in turn; keeps the seeds it was asked with."""

    def __init__(self, *replies: str) -> None:
        self.replies, self.seeds = list(replies), []

    def chat(self, messages: list[dict], *, model: str, **params: object) -> ChatResult:
        self.seeds.append(params["seed"])
        return ChatResult(self.replies.pop(0), "stop", Usage(100, 50), 0.1, model)


def reply(answer: str) -> str:
    return f"NOTES:\n- a note\nQUESTIONS:\nQ: How many eggs?\nA: {answer}"


def test_an_adaptive_budget_stops_once_settled_and_a_fixed_one_does_not() -> None:
    easy = Scripted(*(reply("9") for _ in range(8)))
    learned = run_sleep(easy, "m", "ctx", SleepBudget(passes=8, adaptive=True))
    assert easy.seeds == [0, 1] and learned.passes == 2 and learned.completion_tokens == 100
    hard = Scripted(reply("1"), reply("2"), reply("3"), reply("3"), reply("3"))
    learned = run_sleep(hard, "m", "ctx", SleepBudget(passes=8, adaptive=True))
    assert hard.seeds == [0, 1, 2, 3] and learned.anticipated[0].answer == "3"
    capped = Scripted(reply("1"), reply("2"), reply("3"))
    assert run_sleep(capped, "m", "ctx", SleepBudget(passes=3, adaptive=True)).passes == 3
    fixed = Scripted(*(reply("9") for _ in range(4)))
    assert run_sleep(fixed, "m", "ctx", SleepBudget(passes=4)).passes == 4
