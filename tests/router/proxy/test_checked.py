"""Pure parts of a checked answer: reading the final number, agreement, adding usages."""

from __future__ import annotations

import json

from router.proxy.checked import add_usage, agree, final_number, not_streamed


def said(text: str, finish_reason: str = "stop") -> dict:
    return {"choices": [{"message": {"content": text}, "finish_reason": finish_reason}]}


def test_the_same_number_in_any_spelling_agrees() -> None:
    assert agree(said("18"), said("She makes $18.00 a day.\nAnswer: 18"))
    assert agree(said("0.75"), said("Answer: 3/4"))
    assert not agree(said("18"), said("Answer: 9"))


def test_an_anticipated_answer_is_one_more_voter() -> None:
    assert agree(said("18"), anticipated="$18")
    assert agree(said("18"), said("Answer: 18"), anticipated="18.0")
    assert not agree(said("18"), said("Answer: 18"), anticipated="9")
    assert not agree(said("18"), anticipated="")  # no number: no agreement
    assert not agree()


def test_no_number_or_a_cut_off_answer_never_agrees() -> None:
    assert final_number(said("I cannot tell.")) is None
    assert not agree(said("I cannot tell."), said("I cannot tell."))
    assert final_number(said("16 - 3 - 4 = 9", finish_reason="length")) is None
    assert final_number({"choices": []}) is None and final_number({}) is None


def test_usages_add_up_and_malformed_ones_count_as_zero() -> None:
    a = {"prompt_tokens": 10, "completion_tokens": 2, "total_tokens": 12,
         "prompt_tokens_details": {"cached_tokens": 8}}  # fmt: skip
    b = {"prompt_tokens": 5, "completion_tokens": True, "total_tokens": "7"}
    assert add_usage(a, b, None) == {
        "prompt_tokens": 15,
        "completion_tokens": 2,
        "total_tokens": 12,
        "prompt_tokens_details": {"cached_tokens": 8},
    }


def test_the_cheap_answers_are_asked_whole() -> None:
    body = json.dumps({"stream": True, "stream_options": {"include_usage": True}, "n": 1})
    assert json.loads(not_streamed(body.encode())) == {"stream": False, "n": 1}
    plain = b'{"n": 1}'
    assert not_streamed(plain) is plain
