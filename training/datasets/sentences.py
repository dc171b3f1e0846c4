"""Split a word problem into its context and its question (the Stateful split).

Lin et al. make a problem stateful by keeping every sentence but the question
as the context. A naive split on "." breaks "$0.7", "Mr. Smith" and "7 a.m.",
and "the last sentence" is wrong whenever the question is followed by a remark
("(Round to the nearest integer.)") or is phrased "If ..., calculate ...".
"""

from __future__ import annotations

import re
from dataclasses import dataclass

# A terminator, its closing quotes/brackets, then space and a plausible sentence start.
_BOUNDARY_RE = re.compile(r"[.!?]+[\"'\u201d\u2019)\]]*(?=\s+[\"'\u201c\u2018(\[]?[A-Z0-9$])")
_NEVER_END = frozenset(
    {"mr", "mrs", "ms", "dr", "prof", "st", "jr", "sr", "mt", "vs", "e.g", "i.e", "approx", "cf"}
)
_INITIALS_RE = re.compile(r"(?:[A-Z]\.)+[A-Z]")  # "A.T" of "A.T. Cross"; not "P.M"
# Without a "?", a question is an imperative or a "how/what" phrase, maybe after "If ...,".
_ASKING = (
    r"(?:how|what|which|find|calculate|compute|determine|estimate|evaluate"
    r"|work\s+out|figure\s+out)\b"
)
_PHRASE = (
    r"\b(?:how\s+(?:much|many|long|far|old|often)|what\s+(?:is|was|are|were|will|would)"
    r"|(?:wonder\w*|wants?\s+to\s+know|find\s+out)\s+(?:how|what))\b"
)
# ", then calculate", ", at what time": one linking word may precede the asking word.
_ASKING_RE = re.compile(
    rf"^[\"'(\u201c]?{_ASKING}|,\s*(?:\w+\s+)?{_ASKING}|{_PHRASE}", re.IGNORECASE
)


@dataclass(frozen=True)
class StatefulSplit:
    context: str
    question: str
    found: bool  # False: the whole problem is the question and the context is empty
    question_last: bool  # False: sentences followed the question and went to the context


def _ends_sentence(text: str, end: int) -> bool:
    """Whether the "." at text[end-1] is a full stop rather than an abbreviation."""
    if text[end - 1] != ".":
        return True
    word = re.search(r"[\w.]*\.$", text[:end])
    token = word.group()[:-1] if word else ""
    if token.lower() in _NEVER_END:
        return False
    if _INITIALS_RE.fullmatch(token) and token.replace(".", "") not in ("AM", "PM"):
        return False
    return not (token.lower() == "no" and text[end:].lstrip()[:1].isdigit())


def split_sentences(text: str) -> list[str]:
    """Sentences in order; decimals and abbreviations stay inside their sentence."""
    sentences: list[str] = []
    for block in text.splitlines():
        start = 0
        for m in _BOUNDARY_RE.finditer(block):
            end = m.end()
            if end > start and _ends_sentence(block, end):
                sentences.append(block[start:end].strip())
                start = end
        sentences.append(block[start:].strip())
    return [s for s in sentences if s]


def is_question(sentence: str) -> bool:
    """Ends in "?", closing quotes or brackets aside."""
    return sentence.rstrip("\"'\u201d\u2019)] ").endswith("?")


def _question_index(sentences: list[str]) -> int | None:
    """Index of the asking sentence: the last "?", else the last imperative/"how" one."""
    rules = (is_question, lambda s: bool(_ASKING_RE.search(s)))
    for rule in rules:
        hits = [i for i, s in enumerate(sentences) if rule(s)]
        if hits:
            return hits[-1]
    return None


def _question_span(sentences: list[str], index: int) -> range:
    """The question plus the parenthetical remarks right after it ("(Round ...)")."""
    stop = index + 1
    while stop < len(sentences) and sentences[stop].startswith("("):
        stop += 1
    return range(index, stop)


def split_problem(problem_text: str) -> StatefulSplit:
    """The Stateful split with the facts a loader counts (found, question last)."""
    sentences = split_sentences(problem_text)
    index = _question_index(sentences)
    if index is None:
        return StatefulSplit("", " ".join(problem_text.split()), found=False, question_last=True)
    span = _question_span(sentences, index)
    question = " ".join(sentences[i] for i in span)
    context = " ".join(s for i, s in enumerate(sentences) if i not in span)
    return StatefulSplit(context, question, found=True, question_last=index == len(sentences) - 1)


def split_context_and_question(problem_text: str) -> tuple[str, str]:
    """(context, question); an unfindable question yields ("", whole problem)."""
    split = split_problem(problem_text)
    return split.context, split.question
