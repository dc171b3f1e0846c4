"""The notes one query reads: the lines of a learned context that match it, not all of them.

Every note line in a query's prompt is paid on every query of the context. On TAT-QA the
whole learned context doubled the prompt (529 -> 1,142 tokens on the first 5 contexts),
so the learned route cost more than it saved once prompt tokens were charged. A query
needs one or two lines: "What was the change in Other from 2018 to 2019?" needs the line
"- change in Other from 2018 to 2019: -12.6 million", whatever else the table gives.

Matching is lexical, weighted by how rare a word is among the context's own lines
(a year or "total" is in most lines of a table, a row label in a few), so it needs
no model, costs microseconds and gives training and serving the same lines. The
learned context keeps every line (the cached route and the estimators read it);
`matched_notes` picks what one prompt carries.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Sequence

LINES = 4  # note lines a query's prompt carries at most
LONGEST = 240  # characters: a longer line (a runaway list) is never carried
TITLE = "Worked out in advance:"

_WORD = re.compile(r"[a-z]+|\d+(?:\.\d+)?")
_STOP = frozenset(  # words every question has; as a set literal so ruff keeps it compact
    {"a", "an", "and", "are", "as", "at", "be", "by", "did", "do", "does", "for", "from"}
    | {"how", "in", "is", "it", "its", "of", "on", "or", "the", "to", "was", "were"}
    | {"what", "which", "who", "with", "q"}
)


def words(text: str) -> set[str]:
    return {w for w in _WORD.findall(text.casefold()) if w not in _STOP}


def note_lines(learned: str) -> list[str]:
    """The learned context's lines that state something: notes, "Q: ... A: ..." pairs and
    computed facts all start with "- "; titles and hints do not."""
    lines = (ln.strip() for ln in learned.splitlines())
    return [ln[2:].strip() for ln in lines if ln.startswith("- ") and len(ln) <= LONGEST]


def ranked(question: str, lines: Sequence[str]) -> list[tuple[float, str]]:
    """(score, line) best first; a line shares at least one word with the question. Ties
    keep the learned context's order (passes first, then facts by how often they are asked)."""
    asked = words(question)
    bags = [words(line) for line in lines]
    seen = Counter(w for bag in bags for w in bag)
    n = len(lines)
    scored = []
    for index, (line, bag) in enumerate(zip(lines, bags, strict=True)):
        shared = asked & bag
        if shared:
            # Summed in word order and rounded: a set's order changes with the hash seed, and
            # float sums with it, which would break ties differently from run to run.
            score = round(sum(math.log(1 + n / seen[w]) for w in sorted(shared)), 9)
            scored.append((score, -index, line))
    scored.sort(reverse=True)
    return [(score, line) for score, _, line in scored]


def matched_notes(question: str, learned: str, lines: int = LINES) -> str:
    """The `lines` best-matching lines under a title, or "" when nothing matches: then the
    query is asked on the text alone, as on the raw context."""
    best = [line for _, line in ranked(question, note_lines(learned))[:lines]]
    return TITLE + "\n" + "\n".join(f"- {line}" for line in best) if best else ""
