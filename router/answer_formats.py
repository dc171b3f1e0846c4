"""What a context's queries expect back: a number, short span(s), or free text.

A format is data the rest of the code looks up by name, never a branch on a dataset:
how a rung asks for the answer, how many more tokens the answer itself may need,
which sleep prompt prepares the context, how the final answer is read out of a
model's text (one canonical spelling, so that equal answers are equal strings),
whether two answers agree, and whether an answer is right.

    number  GSM8K and any arithmetic: `router.grading`, exactly as it was measured
    span    documents (TAT-QA): a value with its scale, or words from the text, or
            several of them; graded by the TAT-QA metric (`router.span_metric`)
    text    anything else: no anticipated answer is ever served for it, and the
            proxy passes it through (`router.proxy.routable`)

A context with no declared format is a number context: that is what every table
and policy before formats was measured on.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from router import grading, span_metric, spans
from router.errors import ConfigError
from router.ladder import BARE, FORMAT

DEFAULT = "number"


@dataclass(frozen=True)
class Gold:
    """A query's reference answer: `answer` as one string; `answers` every gold span (a
    multi-span question has several); `scale` "thousand", "million", "billion", "percent"
    or ""."""

    answer: str
    answers: tuple[str, ...] = ()
    scale: str = ""


@dataclass(frozen=True)
class AnswerFormat:
    name: str
    final_line: str  # how a reasoning rung ends
    bare: str  # the bare rung's whole instruction
    extra_tokens: int  # on top of a rung's max_tokens: a span is longer than a number
    sleep_prompt: str  # the key of router.sleep.TEMPLATES that suits it
    extract: Callable[[str, bool], str | None]  # (model text, fallback) -> canonical answer
    agree: Callable[[str, str], bool]  # two canonical answers
    grade: Callable[[str | None, Gold], bool]
    vote_key: Callable[[str], str]  # what voting across sleep passes counts as one answer
    servable: bool  # may an anticipated answer be served as the cached route?
    table_facts: bool  # does sleep-time work add the facts derived from a context's tables?
    # Learned-context lines a query's prompt carries: the best-matching ones
    # (`router.note_match`); 0: the whole learned context, as the number tables measured it.
    note_lines: int = 0
    # What a sleep pass that answers given questions again writes after "A<n>: ".
    reask_answer: str = "the answer alone"

    def instruction(self, rung_effort: str) -> str:
        """A rung's whole instruction; the number format's are the ladder's own."""
        return f"{rung_effort} {self.final_line}" if rung_effort else self.bare


def _number_extract(text: str, fallback: bool) -> str | None:
    return grading.extract_answer(text, fallback=fallback)


def _number_agree(a: str, b: str) -> bool:
    return grading.answers_match(a, b)


def _number_key(answer: str) -> str:
    value = grading.normalize_number(answer)
    return answer if value is None else f"{value:.6g}"


def _number_grade(predicted: str | None, gold: Gold) -> bool:
    return grading.answers_match(predicted, gold.answer)


def _span_extract(text: str, fallback: bool) -> str | None:
    found = spans.extract_span(text, fallback=fallback)
    return spans.canonical_span(found) if found else None


def _span_grade(predicted: str | None, gold: Gold) -> bool:
    answers = gold.answers or (gold.answer,)
    return span_metric.score(predicted, answers, gold.scale).em == 1.0


_SPACE = re.compile(r"\s+")


def _normalized(text: str) -> str:
    return _SPACE.sub(" ", text.strip().strip(".").casefold())


def _text_extract(text: str, fallback: bool) -> str | None:
    return text.strip() or None


def _text_agree(a: str, b: str) -> bool:
    return _normalized(a) == _normalized(b)


def _text_grade(predicted: str | None, gold: Gold) -> bool:
    """Exact after normalising: a text dataset that needs more brings its own grader."""
    return predicted is not None and _text_agree(predicted, gold.answer)


FORMATS: dict[str, AnswerFormat] = {
    "number": AnswerFormat(
        name="number",
        final_line=FORMAT,
        bare=BARE,
        extra_tokens=0,
        sleep_prompt="solve",
        extract=_number_extract,
        agree=_number_agree,
        grade=_number_grade,
        vote_key=_number_key,
        servable=True,
        table_facts=False,
        reask_answer="the number alone",
    ),
    "span": AnswerFormat(
        name="span",
        final_line=(
            'Then write a last line "Answer: " followed by the answer alone: the exact words '
            'from the text, or an amount with its unit (such as "<number> million" or '
            '"<number>%").'
        ),
        bare=(
            "Reply with the answer only: the words from the text, or an amount with its "
            'unit (such as "<number> million" or "<number>%").'
        ),
        extra_tokens=48,
        sleep_prompt="document",
        extract=_span_extract,
        agree=spans.spans_agree,
        grade=_span_grade,
        vote_key=spans.span_key,
        servable=True,
        table_facts=True,
        note_lines=4,
        reask_answer="the words from the text, or an amount with its unit",
    ),
    "text": AnswerFormat(
        name="text",
        final_line="Then give your answer.",
        bare="Reply with the answer only.",
        extra_tokens=240,
        sleep_prompt="notes",
        extract=_text_extract,
        agree=_text_agree,
        grade=_text_grade,
        vote_key=_normalized,
        servable=False,
        table_facts=False,
    ),
}


def answer_format(name: str | None) -> AnswerFormat:
    """None is the number format (see the module's docstring); an unknown name is a
    ConfigError that lists the known ones."""
    try:
        return FORMATS[name or DEFAULT]
    except KeyError:
        known = ", ".join(sorted(FORMATS))
        raise ConfigError(f"unknown answer format {name!r}; known: {known}") from None


def of_context(context: object | None) -> AnswerFormat:
    """A stored context's format (`ContextRecord.answer_format`); None: the number format."""
    return answer_format(getattr(context, "answer_format", None))


def check_format(name: str | None) -> str | None:
    """A name a client gave at registration, checked; None stays None."""
    return None if name is None else answer_format(name).name


def gold(answer: str, answers: Sequence[str] = (), scale: str = "") -> Gold:
    return Gold(answer, tuple(answers), scale)
