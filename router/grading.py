"""Numeric answers: pull the final number out of a model's free text, and grade it.

Both the sleep-time engine (is an anticipated answer the same number as a fresh
one?) and the benchmarks (is the model right?) need the same reading of "the
answer", or the outcome table and the live router would disagree. Numbers are
compared as exact fractions where possible, so "18.00", "18" and "$18" agree and
"3/4" equals "0.75" without float noise leaking into canonical strings.

Extraction priority, strongest signal first: ``\\boxed{}``, an "answer" line,
the GSM8K "#### N" marker, then the last number anywhere.
"""

from __future__ import annotations

import math
import re
from decimal import Decimal, InvalidOperation
from fractions import Fraction

__all__ = [
    "answers_match",
    "canonical_number",
    "extract_answer",
    "gsm8k_gold",
    "normalize_number",
]

# A plain number: thousands groups or bare digits, optional decimals, or ".5".
_NUM = r"(?:\d{1,3}(?:,\d{3})+(?!\d)|\d+)(?:\.\d+)?|\.\d+"
# A sign counts only where it cannot be a binary minus ("16-3" is not "-3").
_SIGN = r"(?:(?<![\w.)])-)?"
_NUMBER_RE = re.compile(rf"{_SIGN}\$?\s?(?:{_NUM})")
_FRACTION_RE = re.compile(rf"{_SIGN}\$?\s?(?:{_NUM})\s*/\s*(?:{_NUM})(?![\d/])")
_ANSWER_MARK_RE = re.compile(
    r"\b(?:final\s+)?answer(?:\s+(?:is|would\s+be|will\s+be|should\s+be)\b\s*:?|\s*[:=])",
    re.IGNORECASE,
)
_GOLD_MARK_RE = re.compile(r"####\s*(.*)")

_LATEX_TEXT_RE = re.compile(r"\\(?:text|textbf|mathrm|mathbf|mbox)\s*\{([^{}]*)\}")
_LATEX_FRAC_RE = re.compile(r"\\[dt]?frac\s*\{([^{}]*)\}\s*\{([^{}]*)\}")
_LATEX_SIMPLE = {
    r"\$": "$", r"\%": "%", r"\,": "", r"\!": "", r"\;": " ", r"\ ": " ",
    "{,}": ",", r"\left": "", r"\right": "", r"\times": "*", r"\cdot": "*",
    "\u2212": "-", "\u2013": "-",
}  # fmt: skip


def _clean(text: str) -> str:
    """Strip the markup models wrap numbers in, so one number regex fits all."""
    for old, new in _LATEX_SIMPLE.items():
        text = text.replace(old, new)
    text = _LATEX_TEXT_RE.sub(r" \1 ", text)
    text = _LATEX_FRAC_RE.sub(r"(\1)/(\2)", text)
    text = re.sub(r"\((\s*-?[\d.,]+\s*)\)", r"\1", text)  # "(3)/(4)" -> "3/4"
    return text.replace("**", "").replace("__", "")


def _to_fraction(token: str) -> Fraction | None:
    """Exact value of one number token ("$-1,234.50", "3 / 4")."""
    parts = token.replace("$", "").replace(",", "").replace(" ", "").split("/")
    try:
        values = [Fraction(Decimal(p)) for p in parts]
    except (InvalidOperation, ValueError):
        return None
    if len(values) == 2:
        return values[0] / values[1] if values[1] != 0 else None
    return values[0]


def _first_value(segment: str, *, fractions: bool) -> Fraction | None:
    """The number a short answer span states: after the last "=", first token."""
    segment = segment.rsplit("=", 1)[-1]
    if fractions and (m := _FRACTION_RE.search(segment)):
        first_plain = _NUMBER_RE.search(segment)
        if first_plain is None or first_plain.start() >= m.start():
            return _to_fraction(m.group())
    m = _NUMBER_RE.search(segment)
    return _to_fraction(m.group()) if m else None


def _format(value: Fraction) -> str:
    """Canonical text: integers bare, others as a plain decimal with no trailing zeros."""
    if value.denominator == 1:
        return str(value.numerator)
    exact = Decimal(value.numerator) / Decimal(value.denominator)
    text = f"{exact.quantize(Decimal('1e-12')).normalize():f}"
    return "0" if text in ("-0", "0") else text


def normalize_number(s: str) -> float | None:
    """The numeric value of a short answer string, or None when it holds no number.

    Accepts what graders see in practice: "$1,234", "18.00", "25%", "5 apples",
    "3/4", "\\frac{3}{4}", "**42**". Only the first number counts.
    """
    value = _first_value(_clean(s), fractions=True)
    return float(value) if value is not None else None


def canonical_number(s: str) -> str | None:
    """The one spelling of a number we store ("70,000.00" -> "70000"), or None."""
    value = _first_value(_clean(s), fractions=True)
    return _format(value) if value is not None else None


def answers_match(predicted: str | None, gold: str, *, rel_tol: float = 1e-6) -> bool:
    """Whether a prediction states the gold number; text golds fall back to equality."""
    if predicted is None:
        return False
    gold_value = normalize_number(gold)
    if gold_value is None:
        return predicted.strip().casefold() == gold.strip().casefold()
    value = normalize_number(predicted)
    return value is not None and math.isclose(value, gold_value, rel_tol=rel_tol)


def gsm8k_gold(answer_field: str) -> str:
    """The gold value after the last "#### " of a GSM8K answer, as written."""
    matches = _GOLD_MARK_RE.findall(answer_field)
    if not matches or not matches[-1].strip():
        raise ValueError("GSM8K answer has no '#### <number>' line")
    return matches[-1].strip()


def _boxed_contents(text: str) -> list[str]:
    """Every \\boxed{...} body, braces balanced (bodies nest \\frac{}{})."""
    bodies = []
    for m in re.finditer(r"\\(?:boxed|fbox)\s*\{", text):
        depth, start = 1, m.end()
        for i in range(start, len(text)):
            depth += {"{": 1, "}": -1}.get(text[i], 0)
            if depth == 0:
                bodies.append(text[start:i])
                break
    return bodies


def _from_boxed(text: str) -> Fraction | None:
    for body in reversed(_boxed_contents(text)):
        if (value := _first_value(_clean(body), fractions=True)) is not None:
            return value
    return None


def _from_answer_line(text: str) -> Fraction | None:
    """Last "Answer:" / "answer is" span; the number may sit on the next line."""
    for m in reversed(list(_ANSWER_MARK_RE.finditer(text))):
        rest = text[m.end() :].lstrip(" \t*:")
        lines = [line for line in rest.split("\n") if line.strip()][:2]
        for line in lines:
            # Only the first sentence states the answer ("7. Check: 7 * 2 = 14"), and an
            # aside must not win over it ("18 (because x=3)").
            sentence = re.split(r"\.(?=\s|$)", line)[0]
            for span in (re.sub(r"\([^()]*\)", " ", sentence), sentence):
                if (value := _first_value(span, fractions=True)) is not None:
                    return value
    return None


def _from_gold_marker(text: str) -> Fraction | None:
    matches = _GOLD_MARK_RE.findall(text)
    return _first_value(matches[-1], fractions=True) if matches else None


def _last_number(text: str) -> Fraction | None:
    matches = _NUMBER_RE.findall(text)
    return _to_fraction(matches[-1]) if matches else None


def extract_answer(text: str, *, fallback: bool = True) -> str | None:
    """The final numeric answer a model gave, canonical ("1,234.0" -> "1234"), or None.

    `fallback=False` skips the last-number guess: an answer cut off by its token
    budget ends on an intermediate number, which is not the model's answer.
    """
    cleaned = _clean(text)
    finders = (_from_boxed, _from_answer_line, _from_gold_marker, _last_number)
    for finder in finders if fallback else finders[:-1]:
        source = text if finder is _from_boxed else cleaned
        if (value := finder(source)) is not None:
            return _format(value)
    return None
