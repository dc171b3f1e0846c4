"""The TAT-QA metric: exact match and the numeracy-aware F1, with the scale inside the number.

Written from the definition in Zhu et al. (ACL 2021) and the reference
`tatqa_metric.py` / `tatqa_utils.py` (NExTplusplus/TAT-QA). As there:

- an answer is its spans, sorted and joined into one string; a span that is a
  number (first word a number, an optional scale word after it; "$", "€", "£",
  ",", "%", quotes and brackets ignored; "(12)" is -12) becomes its value
  rounded to 2 decimals and multiplied by the scale (thousand 1e3, million 1e6,
  billion 1e9, percent 0.01), so "1,496.5 million" equals gold 1,496.5 with
  scale "million", "26.47%" equals "26.47 percent" and equals 26.47 with scale
  "percent", and a number in the wrong scale scores 0; a text span gets the
  scale word appended;
- that string is normalised token by token (lower case, punctuation and
  articles dropped unless the token is a number, numbers in one spelling);
  exact match is equality, F1 is the token-set F1 rounded to 2 decimals, and
  arithmetic and count answers take F1 = exact match;
- a lone number stated with no scale is also read unscaled and unrounded
  ("0.2647" matches 26.47 percent), the reference's `add_percent_pred`.

Where we differ, on purpose: arithmetic is exact (Decimal, round half up, not
binary floats); U+2212 (minus) and U+2013 (en dash) before a digit are minus
signs (the reference reads U+2212 "298" as text); "(12.3%)" is negative too; a span's own scale
word ("$3.0 million") replaces the answer's scale instead of multiplying by it
twice; "2019" and "2019.0" are the same token. The model states its answer as
text, so the prediction's scale is read from that text (the reference takes it
as a separate field: "1.5m", "2bn", "26 per cent" are read too) and only its
numbers take that scale. Its spans are split on ";" and new lines, and the
better of two readings counts: against one gold span, also the whole text;
against several, also a split at ", " and " and ". Unicode quotes and "`" are
punctuation. Checked on the dev split: every gold, restated with its scale and
its spans reversed, scores EM 1 (1,668 of 1,668).
"""

from __future__ import annotations

import re
import string
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal

SCALES: dict[str, Decimal] = {
    "": Decimal(1),
    "thousand": Decimal(10) ** 3,
    "million": Decimal(10) ** 6,
    "billion": Decimal(10) ** 9,
    "percent": Decimal("0.01"),
}
_WORDS = ("hundred", "thousand", "million", "billion", "percent")  # substring, as the reference
_QUOTES = "\u201c\u201d\u2018\u2019"  # curly double and single quotes
_CLEAN = str.maketrans("", "", "'\"\\$€£¥%(),[]`" + _QUOTES)
_MAX_DIGITS = 24  # longer is no amount; and Decimal rounds 28 digits exactly
_LITERAL = re.compile(r"^[+-]?(?:\d+(?:\.\d*)?|\.\d+)$")
_MINUS = re.compile("[\u2212\u2013]" + r"(?=\s*[\d.$€£¥(])")  # minus sign, en dash
_NEGATIVE = re.compile(r"^[^\d(]*\(\s*[$€£¥]?\s*[\d.,]*\d\s*%?\s*\)")
_PER_CENT = re.compile(r"\bper\s+cent\b", re.IGNORECASE)
_ABBREVIATION = re.compile(r"(?<=\d)(bn|mn|m|k)\b", re.IGNORECASE)
_ABBREVIATED = {"bn": " billion", "mn": " million", "m": " million", "k": " thousand"}
_PERCENT = re.compile(r"\d\s*%")
_PUNCTUATION = set(string.punctuation) | set(_QUOTES)
_ARTICLES = {"a", "an", "the"}
_SPAN_SPLIT = re.compile(r"\s*(?:;|\n)\s*")
_LIST_SPLIT = re.compile(r"\s*(?:,\s+|\band\s+)\s*")


@dataclass(frozen=True)
class SpanScore:
    em: float
    f1: float


@dataclass(frozen=True)
class Number:
    value: Decimal  # as stated, sign applied
    scale: str  # the span's own scale word ("percent" for "%"), else ""


def _scale_word(word: str) -> str:
    """The scale a word names ("millions" -> "million"); "" when none."""
    lowered = word.lower()
    found = next((w for w in _WORDS if w in lowered), "")
    return "" if found == "hundred" else found


def read_number(span: str) -> Number | None:
    """The span as a number, the way the reference's `is_number`/`to_number` read it."""
    text = _PER_CENT.sub("percent", _MINUS.sub("-", span.strip()))
    text = _ABBREVIATION.sub(lambda m: _ABBREVIATED[m.group(1).lower()], text)
    words = text.translate(_CLEAN).split()
    if not words or len(words[0]) > _MAX_DIGITS or not _LITERAL.match(words[0]):
        return None
    if len(words) > 1 and not any(w in words[1].lower() for w in _WORDS):
        return None
    value = Decimal(words[0])
    if _NEGATIVE.search(text) and value > 0:
        value = -value
    if _PERCENT.search(text):
        return Number(value, "percent")
    if "hundred" in (words[1].lower() if len(words) > 1 else ""):
        value *= 100
    return Number(value, _scale_word(words[1]) if len(words) > 1 else "")


def plain(value: Decimal) -> str:
    """One spelling per value: no exponent, no trailing zeros, no "-0"."""
    text = f"{value.normalize():f}"
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return "0" if text in ("-0", "") else text


def _rounded(value: Decimal, places: int) -> Decimal:
    return value.quantize(Decimal(1).scaleb(-places), rounding=ROUND_HALF_UP)


def scaled(number: Number, scale: str) -> Decimal:
    """The value the metric compares: rounded to 2 decimals, then times its scale."""
    return _rounded(number.value, 2) * SCALES.get(number.scale or scale, Decimal(1))


def _item(span: str, scale: str, label_text: bool) -> str:
    number = read_number(span)
    if number is None:
        return f"{span} {scale}" if scale and label_text else span
    return plain(scaled(number, scale))


def _token(token: str) -> str:
    token = token.lower()
    number = read_number(token.rstrip(".,;:!?"))
    if number is not None and number.scale in ("", "percent"):
        value = number.value * (SCALES["percent"] if number.scale == "percent" else 1)
        return plain(_rounded(value, 4))
    token = "".join(ch for ch in token if ch not in _PUNCTUATION)
    return "" if token in _ARTICLES else token


def normalize(text: str) -> str:
    """Token by token: numbers in one spelling, else lower case without punctuation."""
    tokens = (_token(t) for t in _MINUS.sub("-", text).split())
    return " ".join(t for t in tokens if t)


def answer_string(spans: Sequence[str], scale: str, *, label_text: bool = True) -> str:
    """The reference's `get_answer_str`: every span in metric form, sorted, joined. A
    stated answer's text spans already say their scale (`label_text=False`)."""
    items = [normalize(_item(span, scale, label_text)) for span in spans]
    return " ".join(item for item in sorted(items) if item)


def _f1(predicted: set[str], gold: set[str]) -> float:
    common = len(predicted & gold)
    precision = common / len(predicted) if predicted else 1.0
    recall = common / len(gold) if gold else 1.0
    if precision == 0.0 and recall == 0.0:
        return 0.0
    return round(2 * precision * recall / (precision + recall), 2)


def _clean_span(span: str) -> str:
    span = span.strip().strip("*_`\"'" + _QUOTES).strip()
    span = re.sub(r"^(?:[-*•]\s+|\d+[.)]\s+|and\s+)", "", span)
    return span.rstrip(".").strip() if read_number(span) is None else span


def split_spans(text: str) -> list[str]:
    """The spans of a stated answer: split on ";" and new lines, bullets dropped."""
    spans = (_clean_span(s) for s in _SPAN_SPLIT.split(text))
    return [s for s in spans if s]


def prediction_scale(spans: Sequence[str]) -> str:
    """The scale the text states: the first scale word (or "%") on a number."""
    for span in spans:
        number = read_number(span)
        if number is not None and number.scale:
            return number.scale
    return ""


def _readings(text: str, gold_count: int) -> list[list[str]]:
    """How the stated answer may be cut into spans: at ";" and new lines, and besides,
    for one gold span the whole text, for several golds a split at ", " and "and"."""
    spans = split_spans(text)
    if len(spans) > 1 and gold_count == 1:
        return [spans, [_clean_span(" ".join(text.split()))]]
    if len(spans) != 1 or gold_count < 2:
        return [spans]
    listed = [_clean_span(s) for s in _LIST_SPLIT.split(spans[0])]
    return [spans, [s for s in listed if s]]


def _strings(spans: list[str]) -> list[str]:
    """The metric strings for one reading, plus the unscaled lone number."""
    scale = prediction_scale(spans)
    strings = [answer_string(spans, scale, label_text=False)]
    number = read_number(spans[0]) if len(spans) == 1 else None
    if number is not None and not number.scale:
        strings.append(plain(_rounded(number.value, 4)))
    return strings


def _compare(predicted: str, gold: str) -> SpanScore:
    em = 1.0 if predicted == gold else 0.0
    return SpanScore(em, _f1(set(predicted.split()), set(gold.split())))


def score(
    prediction: str | None,
    gold_answers: Sequence[str],
    gold_scale: str,
    *,
    answer_type: str = "",
) -> SpanScore:
    """EM and F1 of a stated answer against the gold spans and scale; arithmetic and
    count answers (pass `answer_type`) score F1 = EM, as the reference does."""
    if not split_spans(prediction or "") or not gold_answers:
        return SpanScore(0.0, 0.0)
    gold = answer_string(gold_answers, gold_scale)
    results = [
        _compare(predicted, gold)
        for reading in _readings(prediction or "", len(gold_answers))
        for predicted in _strings(reading)
    ]
    best = max(results, key=lambda s: (s.em, s.f1))
    if answer_type in ("arithmetic", "count"):
        return SpanScore(best.em, best.em)
    return best
