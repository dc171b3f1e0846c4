"""Span answers as a model states them: find the answer, compare two, store one spelling.

The "span" answer format's counterpart of `router/grading.py`: a TAT-QA answer
is a year, a phrase, a list of phrases or a number with a scale ("1,496.5
million", "26.47%"), so the answer is the text after the last "Answer:", and two
answers agree when the TAT-QA metric (`router/span_metric.py`) could not tell
them apart: the same bag of normalised spans, numbers in the same scale.
"""

from __future__ import annotations

import re

from router.span_metric import (
    SCALES,
    answer_string,
    plain,
    prediction_scale,
    read_number,
    split_spans,
)

# "Answer:" or "the answer is:" at a line's start or after a word ("... table. Answer: 6",
# "Step 5: The answer is: 77,131"); without its colon ("the answer depends") it is prose.
_MARK = re.compile(
    r"(?:^|(?<=\s))[>#*_-]*(?:the\s+)?(?:final\s+)?answer(?:\s+is)?\s*(?:\*\*|__)?\s*[:=]",
    re.IGNORECASE | re.MULTILINE,
)
# A last line that states an amount as a sentence: "The sum ... is 170 million."
_STATED_AMOUNT = re.compile(r"\s(?:is|are|was|were|equals|of)\s+((?:[-$(]|\d)[^\s].*)$")
_BULLET = re.compile(r"^\s*(?:[-*•]|\d+[.)])\s+")
_BOXED = re.compile(r"\\boxed\s*\{([^{}]*)\}")
_WRAPPERS = "*_`\"' \t\u201c\u201d\u2018\u2019"  # markdown and straight or curly quotes
_SUFFIX = {"percent": "%", "thousand": " thousand", "million": " million", "billion": " billion"}


def _unwrap(line: str) -> str:
    """A line without its markdown, quotes, \\boxed{} and final full stop."""
    line = _BOXED.sub(r"\1", line).replace("**", "").replace("__", "")
    line = line.strip(_WRAPPERS)
    return line[:-1].rstrip(_WRAPPERS) if line.endswith(".") else line


def _listed(lines: list[str]) -> str:
    """The lines after a bare "Answer:": a bulleted list as spans, else the first line."""
    bullets = []
    for line in lines:
        if not _BULLET.match(line):
            break
        bullets.append(_unwrap(_BULLET.sub("", line)))
    return "; ".join(b for b in bullets if b) if bullets else _unwrap(lines[0])


def extract_span(text: str, *, fallback: bool = True) -> str | None:
    """The answer the model stated: what follows the last "Answer:" (or the list under a
    bare "Answer:"); else, with `fallback`, the last non-empty line, or the amount it
    states as a sentence ("... is 170 million")."""
    marks = list(_MARK.finditer(text))
    if marks:
        rest = text[marks[-1].end() :].split("\n")
        lines = [line for line in rest[1:] if line.strip()]
        stated = _unwrap(rest[0]) or (_listed(lines) if lines else "")
        return stated or None
    if not fallback:
        return None
    lines = [line for line in text.split("\n") if line.strip()]
    if not lines:
        return None
    last = _unwrap(lines[-1])
    amount = _STATED_AMOUNT.search(last)
    if amount is not None and len(amount.group(1).split()) <= 4:
        return _unwrap(amount.group(1))
    return last or None


def span_key(text: str) -> str:
    """What the metric compares: two answers agree exactly when their keys are equal and
    not empty, so this is the key to vote on ("Fixed-price type" and "the fixed-price
    type." one answer; "1,500 thousand" and "1.5 million" too)."""
    spans = split_spans(text)
    return answer_string(spans, prediction_scale(spans), label_text=False)


def spans_agree(a: str, b: str) -> bool:
    """Same answer for an agreement check: the same bag of normalised spans and
    numbers, numbers in the same scale ("1,496.5 million" = "$1496.5 million")."""
    key = span_key(a)
    return bool(key) and key == span_key(b)


def _spelling(span: str, scale: str) -> str:
    number = read_number(span)
    if number is None:
        return " ".join(span.split())
    own = number.scale or scale
    return plain(number.value) + (_SUFFIX[own] if own in SCALES and own else "")


def canonical_span(text: str) -> str:
    """The one spelling stored for an anticipated answer: numbers plain ("-12.6",
    "1496.5 million", "26.47%"), text as written, spans sorted and joined by "; "."""
    spans = split_spans(text)
    scale = prediction_scale(spans)
    spelled = [_spelling(span, scale) for span in spans]
    return "; ".join(sorted(spelled, key=lambda s: (span_key(s), s)))
