"""k sleep passes merged into one learned context, and when to stop sampling more.

Each question the passes anticipated is kept once, with the answer most passes computed
(`vote`); its agreement (the share of the passes that asked it and computed that answer)
is the predictability signal the cached route reads. The learned text of k > 1 passes is
the notes de-duplicated across passes and each voted question once: concatenating every
pass's notes ("Notes, version i") multiplied the prompt by k for no new fact.

One pass keeps the text it has always had, byte for byte: the committed GSM8K tables were
collected with it.
"""

from __future__ import annotations

import re
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

from router.answer_formats import answer_format
from router.anticipated import Anticipated

VoteKey = Callable[[str], str]


@dataclass(frozen=True)
class ParsedPass:
    notes: tuple[str, ...]
    anticipated: tuple[Anticipated, ...]
    rejected: int  # questions dropped for lack of a numeric answer

    @property
    def empty(self) -> bool:
        return not self.notes and not self.anticipated


def vote(anticipated: Iterable[Anticipated], key: VoteKey | None = None) -> tuple[Anticipated, ...]:
    """`key`: what counts as one answer (the format's `vote_key`; numbers by default)."""
    key = key or answer_format(None).vote_key
    by_question: dict[str, list[Anticipated]] = defaultdict(list)
    for item in anticipated:
        by_question[_question_key(item.question)].append(item)
    merged = []
    for items in by_question.values():
        counts = Counter(key(a.answer) for a in items)
        best, hits = counts.most_common(1)[0]
        answer = next(a.answer for a in items if key(a.answer) == best)
        merged.append(Anticipated(items[0].question, answer, len(items), hits / len(items)))
    return tuple(sorted(merged, key=lambda a: (-a.support, -a.agreement)))


def combine(
    parsed: Sequence[ParsedPass], key: VoteKey | None = None
) -> tuple[str, tuple[Anticipated, ...]]:
    """The learned text and the voted anticipated answers of passes 0..k-1."""
    voted = vote((a for one in parsed for a in one.anticipated), key)
    if len(parsed) == 1:
        return _one_pass_text(parsed[0]), voted
    notes = _distinct(n for one in parsed for n in one.notes)
    lines = [f"- {n}" for n in notes] + [f"- Q: {a.question} A: {a.answer}" for a in voted]
    return ("Notes:\n" + "\n".join(lines) if lines else ""), voted


def settled(passes: Sequence[ParsedPass], key: VoteKey | None = None) -> bool:
    """Whether more passes would not change this context's voted answers.

    The rule: at least two passes, and the last two give the same answer (by `key`) to every
    question both asked, with at least one question in common. Why: once two passes agree,
    one more pass that disagrees leaves the majority where it is (2 of 3), so a further pass
    is paid for nothing; a disagreement is settled as soon as a new pass sides with one of
    the answers (the last two then agree). Questions only one of the two asked say nothing
    either way; two passes with no question in common have shown no agreement at all.
    Pass 0 is greedy and pass 1 sampled, so an easy context costs two passes."""
    if len(passes) < 2:
        return False
    last, before = (_answers(p, key) for p in passes[-2:])
    common = last.keys() & before.keys()
    return bool(common) and all(last[q] == before[q] for q in common)


def passes_needed(passes: Sequence[ParsedPass], cap: int, key: VoteKey | None = None) -> int:
    """The first pass count j <= cap whose passes 0..j-1 are settled, else cap: what an
    adaptive budget of `cap` passes spends, given (at least) the passes it would sample."""
    for count in range(2, min(cap, len(passes)) + 1):
        if settled(passes[:count], key):
            return count
    return cap


def _answers(one: ParsedPass, key: VoteKey | None) -> dict[str, str]:
    """Question -> this pass's answer, as `key` reads it (a pass that asked a question twice
    counts its own majority)."""
    key = key or answer_format(None).vote_key
    return {_question_key(a.question): key(a.answer) for a in vote(one.anticipated, key)}


def _one_pass_text(one: ParsedPass) -> str:
    if one.empty:
        return ""
    lines = [f"- {n}" for n in one.notes]
    lines += [f"- Q: {a.question} A: {a.answer}" for a in one.anticipated]
    return "Notes:\n" + "\n".join(lines)


def _distinct(notes: Iterable[str]) -> list[str]:
    """Each note once, the first pass's wording: duplicates differ only in spacing or case."""
    seen: set[str] = set()
    kept = []
    for note in notes:
        normal = " ".join(note.split()).casefold()
        if normal not in seen:
            seen.add(normal)
            kept.append(note)
    return kept


def _question_key(question: str) -> str:
    return " ".join(re.sub(r"[^a-z0-9 ]", " ", question.lower()).split())
