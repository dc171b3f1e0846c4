"""Answer one query at one rung, on the raw context c or on the learned context c'.

The context (and notes) open the prompt and the query closes it, so every query
of one context shares a prompt prefix that llama.cpp and hosted APIs can cache.
"""

from __future__ import annotations

from dataclasses import dataclass

from router.answer_formats import AnswerFormat, answer_format
from router.ladder import Rung
from router.note_match import matched_notes
from router.sleep import ChatBackend, LearnedContext

SYSTEM = "You answer questions about a text accurately."
NOTES_HINT = (
    "The notes were worked out from the text in advance. If they already answer the "
    "question, use that answer; otherwise compute it from the text and the notes."
)


@dataclass(frozen=True)
class Answer:
    text: str
    extracted: str | None
    truncated: bool
    prompt_tokens: int
    completion_tokens: int
    cached_prompt_tokens: int
    latency_s: float


def answer_messages(
    context: str,
    question: str,
    rung: Rung,
    learned: LearnedContext | None = None,
    fmt: AnswerFormat | None = None,
) -> list[dict[str, str]]:
    """The rung says how much to think, the format how to state the answer."""
    fmt = fmt or answer_format(None)
    parts = [f"Text:\n{context.strip()}"] if context.strip() else []
    notes = notes_for(learned.text if learned else "", question, fmt)
    if notes:
        parts.append(f"{notes}\n\n{NOTES_HINT}")
    parts.append(f"Question: {question.strip()}\n{fmt.instruction(rung.effort)}")
    return [{"role": "system", "content": SYSTEM}, {"role": "user", "content": "\n\n".join(parts)}]


def notes_for(learned: str, question: str, fmt: AnswerFormat) -> str:
    """What of a learned context one query's prompt carries, in collection and in the proxy
    alike: all of it, or the lines that match the question (the format says which)."""
    if not learned or not fmt.note_lines:
        return learned
    return matched_notes(question, learned, fmt.note_lines)


def answer(
    backend: ChatBackend,
    model: str,
    context: str,
    question: str,
    rung: Rung,
    learned: LearnedContext | None = None,
    *,
    supports_reasoning_effort: bool = False,
    fmt: AnswerFormat | None = None,
) -> Answer:
    fmt = fmt or answer_format(None)
    params = rung.request_params(
        supports_reasoning_effort=supports_reasoning_effort, extra_tokens=fmt.extra_tokens
    )
    messages = answer_messages(context, question, rung, learned, fmt)
    result = backend.chat(messages, model=model, temperature=0.0, **params)
    truncated = result.finish_reason == "length"
    return Answer(
        text=result.text,
        extracted=fmt.extract(result.text, not truncated),
        truncated=truncated,
        prompt_tokens=result.usage.prompt_tokens,
        completion_tokens=result.usage.completion_tokens,
        cached_prompt_tokens=result.usage.cached_prompt_tokens,
        latency_s=result.latency_s,
    )
