"""Agreement of a checked answer's voters: the same final number, whatever the spelling."""

from __future__ import annotations

from router.grading import normalize_number
from router.proxy.checked import agree
from router.proxy.formats.chat import final_number


def said(text: str, finish_reason: str = "stop") -> dict:
    return {"choices": [{"message": {"content": text}, "finish_reason": finish_reason}]}


def votes(*texts: str, anticipated: str | None = None) -> list[float | None]:
    """As the checked flow counts them: each answer's final number, then the anticipated."""
    values = [final_number(said(t)) for t in texts]
    return values if anticipated is None else [*values, normalize_number(anticipated)]


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
    assert not agree([None, 9.0]) and not agree([9.0, None])
