"""Agreement of a checked answer's voters: the same final answer, whatever the spelling."""

from __future__ import annotations

from router.answer_formats import FORMATS
from router.proxy.checked import agree
from router.proxy.formats.chat import final_answer

NUMBER = FORMATS["number"]


def said(text: str, finish_reason: str = "stop") -> dict:
    return {"choices": [{"message": {"content": text}, "finish_reason": finish_reason}]}


def votes(*texts: str, anticipated: str | None = None) -> list[str | None]:
    """As the checked flow counts them: each answer's final answer, then the anticipated."""
    values = [final_answer(said(t), NUMBER) for t in texts]
    return values if anticipated is None else [*values, anticipated]


def test_the_same_number_in_any_spelling_agrees() -> None:
    assert agree(votes("18", "She makes $18.00 a day.\nAnswer: 18"))
    assert agree(votes("0.75", "Answer: 3/4"))
    assert not agree(votes("18", "Answer: 9"))


def test_an_anticipated_answer_is_one_more_voter() -> None:
    assert agree(votes("18", anticipated="$18"))
    assert agree(votes("18", "Answer: 18", anticipated="18.0"))
    assert not agree(votes("18", "Answer: 18", anticipated="9"))
    assert not agree(votes("18", anticipated=""))  # no number: no agreement
    assert not agree([])


def test_no_number_never_agrees() -> None:
    assert not agree(votes("I cannot tell.", "I cannot tell."))
    assert not agree([None, "9"]) and not agree(["9", None])


def test_span_answers_agree_as_the_span_format_compares_them() -> None:
    span = FORMATS["span"]
    texts = ("Answer: 1,500 thousand", "Other rose.\nAnswer: 1.5 million")
    values = [final_answer(said(t), span) for t in texts]
    assert agree(values, span)
    assert agree([*values, "1.5 million"], span)
    assert not agree([*values, "1.5"], span)  # no scale: another answer
    assert not agree([final_answer(said("Answer: 2019"), span), "2018"], span)
