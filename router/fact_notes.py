"""The facts computed from a context's tables, added to what the sleep passes learned.

Every fact is exact (`router.table_facts` computes it from the parsed table), so it joins
the anticipated answers with full agreement, and each is a line of the learned context in
a compact form. A query's prompt carries only the lines that match it
(`router.note_match`), so the facts kept are bounded by what the store holds, not by
what a prompt can afford.
"""

from __future__ import annotations

from collections.abc import Sequence

from router.anticipated import Anticipated
from router.spans import canonical_span
from router.table_facts import TableFact

KEPT = 160  # facts kept per context, in the order TAT-QA asks for them most
_SCALES = {"percent": "%", "": ""}


def stated(fact: TableFact) -> str:
    """The answer as the span format stores one: the value with its scale, canonical."""
    suffix = _SCALES.get(fact.scale, f" {fact.scale}")
    return canonical_span(f"{fact.answer}{suffix}")


def _noted(question: str) -> str:
    """ "What is the change in X from 2018 to 2019?" -> "change in X from 2018 to 2019":
    the notes are read on every query, so they say it in fewer tokens."""
    text = question.rstrip("?").strip()
    for opening in ("What is the ", "What was the ", "What are the "):
        if text.startswith(opening):
            return text[len(opening) :]
    return text


def with_facts(
    notes: str, anticipated: Sequence[Anticipated], facts: Sequence[TableFact]
) -> tuple[str, tuple[Anticipated, ...]]:
    if not facts:
        return notes, tuple(anticipated)
    asked = {a.question.casefold() for a in anticipated}
    fresh = [f for f in facts if f.question.casefold() not in asked][:KEPT]
    lines = [f"- {_noted(f.question)}: {stated(f)}" for f in fresh]
    block = "Computed from the table:\n" + "\n".join(lines)
    text = f"{notes}\n\n{block}" if notes else block
    return text, (*anticipated, *(Anticipated(f.question, stated(f)) for f in fresh))
