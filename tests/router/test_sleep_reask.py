"""Passes that answer pass 0's questions again (`SleepBudget.reask`): the prompt they get and
what voting and adaptive stopping make of them (how they are read: test_sleep_parse.py)."""

from __future__ import annotations

from router.answer_formats import answer_format
from router.anticipated import Anticipated
from router.sleep import (
    PassResult,
    SleepBudget,
    reask_messages,
    run_sleep,
)
from router.sleep_votes import ParsedPass
from router.upstream import ChatResult, Usage

NUMBER = answer_format("number")
SPAN = answer_format("span")
ASKED = ("How many eggs are left each day?", "How much does Janet earn each day?")
DOC = "Janet's ducks lay 16 eggs per day. She eats 3 and bakes with 4; she sells the rest at $2."

FIRST = """NOTES:
- Eggs left each day: 16 - 3 - 4 = 9
QUESTIONS:
Q: How many eggs are left each day?
Work: 16 - 3 - 4 = 9
A: 9
Q: How much does Janet earn each day?
Work: 9 * 2 = 18
A: 18"""


def a_pass(*anticipated: Anticipated) -> PassResult:
    return PassResult(0, "", ParsedPass((), anticipated, 0), 0, 0, False, 0.0)


def test_the_reask_prompt_lists_the_questions_numbered_and_names_the_formats_answer() -> None:
    messages = reask_messages(DOC, ASKED, SPAN)
    user = messages[-1]["content"]
    assert DOC in user
    assert f"Q1: {ASKED[0]}\nQ2: {ASKED[1]}" in user
    assert SPAN.reask_answer in user and NUMBER.reask_answer not in user


def test_only_later_passes_of_a_reasking_budget_are_reasked() -> None:
    first = a_pass(
        Anticipated(ASKED[0], "9"), Anticipated(ASKED[0], "9"), Anticipated(ASKED[1], "18")
    )
    reask = SleepBudget(passes=3, reask=True)
    assert reask.reasked([], NUMBER) == ()  # pass 0 writes its own questions
    assert reask.reasked([first], NUMBER) == ASKED  # each once, in pass 0's order
    assert SleepBudget(passes=3).reasked([first], NUMBER) == ()  # off unless set
    assert SleepBudget(passes=3, reask=True, prompt="program").reasked([first], NUMBER) == ()
    assert reask.reasked([a_pass()], NUMBER) == ()  # pass 0 asked nothing: a pass of its own


class Replies:
    """Pass 0 writes FIRST; a re-asked pass answers by the seed's script."""

    def __init__(self, later: list[str]) -> None:
        self.later, self.prompts = later, []

    def chat(self, messages: list[dict], *, model: str, **params: object) -> ChatResult:
        self.prompts.append(messages[-1]["content"])
        seed = int(params["seed"])  # type: ignore[call-overload]
        text = FIRST if seed == 0 else self.later[seed - 1]
        return ChatResult(text, "stop", Usage(100, 40), 0.01, model)


def test_reasked_passes_are_voted_on_pass_0s_questions() -> None:
    backend = Replies(["Q1: left?\nA1: 9\nQ2: money?\nA2: 20", "A1: 9\nA2: 20"])
    learned = run_sleep(backend, "m", DOC, SleepBudget(passes=3, reask=True))
    assert "Q1: How many eggs are left each day?" in backend.prompts[1]
    assert backend.prompts[1] == backend.prompts[2]  # the same questions, sampled again
    voted = {a.question: (a.answer, a.support, a.agreement) for a in learned.anticipated}
    assert voted[ASKED[0]] == ("9", 3, 1.0)
    assert voted[ASKED[1]] == ("20", 3, 2 / 3)
    assert learned.text.count("Eggs left each day") == 1  # pass 0's notes, once


def test_free_passes_that_word_a_question_differently_never_settle_reasked_ones_do() -> None:
    wordings = ("remain", "are left over", "does she keep")
    reworded = [f"QUESTIONS:\nQ: How many eggs {w} each day?\nA: 9" for w in wordings]
    free = run_sleep(Replies(reworded), "m", DOC, SleepBudget(passes=4, adaptive=True))
    assert free.passes == 4
    reasked = Replies(["A1: 9\nA2: 18"] * 3)
    settled = run_sleep(reasked, "m", DOC, SleepBudget(passes=4, adaptive=True, reask=True))
    assert settled.passes == 2 and len(reasked.prompts) == 2
