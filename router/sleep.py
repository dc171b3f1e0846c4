"""The sleep-time pass: think about a context before any query arrives.

One pass asks the model, from the context alone, for (a) notes: every stated
and derivable quantity with its calculation, and (b) anticipated questions,
each solved. k passes are sampled with diversity (pass 0 greedy) and merged by
voting (`router.sleep_votes`): each question once with its majority answer and the
share of passes that agree, since agreement is a predictability signal. An adaptive
budget stops sampling once the last two passes agree (`settled`).

A budget that re-asks (`SleepBudget.reask`) has passes 1..k-1 answer pass 0's questions
again instead of writing their own: left free, two passes of the 1.5B model shared no
question text at all in 36 of 56 GSM8K contexts, so nothing could be voted on and no
context ever settled. The same questions, sampled, make agreement mean what it should:
how often independent attempts at one question reach one answer.

A pass's text is read by `router.sleep_parse`: nothing a model writes can crash a run.

Users come first: a pass given `stop` (the proxy's worker gives one) streams its call
and, once `stop()` holds, closes the stream and raises PassPreempted. Closing the HTTP
stream makes llama.cpp stop generating for that slot; with the call made whole, one
user request waited 211 s behind a pass (0.6 s with sleep off).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from router.answer_formats import AnswerFormat, answer_format
from router.anticipated import Anticipated
from router.errors import ConfigError
from router.fact_notes import with_facts
from router.sleep_parse import PROGRAM_PROMPTS, parse_pass, parse_reasked
from router.sleep_votes import ParsedPass, combine, settled
from router.sleep_votes import vote as vote  # re-exported: callers vote from here
from router.table_facts import table_facts
from router.upstream.results import (
    ChatResult,
    StreamDelta,
    Usage,
    estimate_prompt_tokens,
    estimate_tokens,
)

SYSTEM = (
    "You study a text before anyone asks about it, so that later questions can be "
    "answered instantly. Be precise: every number you write must follow from the text."
)

LAYOUT = """Use exactly this layout:
NOTES:
- ...
QUESTIONS:
Q: ...
Work: ...
A: ..."""

# Prompt variants, measured against each other by `sleeptime collect --sleep-prompt`.
TEMPLATES = {
    # v1: list what is stated and derivable; anticipate likely questions.
    "notes": """Text:
{context}

Nobody has asked a question yet. Prepare for the questions that are likely.
NOTES: list each quantity the text states and each quantity that can be computed
from it, one per line, with its calculation, e.g. "- Eggs left each day: 16 - 3 - 4 = 9".
QUESTIONS: write the {n_questions} questions someone is most likely to ask about this text,
hardest first. Solve each one step by step in a line "Work: ...", then give a line "A: <number>".

"""
    + LAYOUT,
    # v2: chain derivations to the quantity the text builds up to, and solve that question.
    "solve": """Text:
{context}

This text sets up a problem whose question has not been asked yet.
NOTES: derive every quantity that follows from the text, chaining the steps, one per
line with its calculation and result, e.g. "- Eggs sold each day: 16 - 3 - 4 = 9".
Include totals, differences, rates, money amounts and the quantity the text builds up to.
QUESTIONS: write the {n_questions} questions most likely to be asked next. First the final
question the text builds up to, which needs several steps. Solve each step by step in a
line "Work: ...", then give a line "A: <number>".

"""
    + LAYOUT,
    # documents (the span format): what the paragraphs state; the tables' derived
    # quantities are computed exactly beside it (router.table_facts), not asked of the model.
    "document": """Text:
{context}

Nobody has asked a question yet. Prepare for the questions a reader of this report is likely
to ask about its paragraphs (the table's figures are worked out separately).
NOTES: list the facts the paragraphs state that questions are likely to ask about, one
short line each, with the value and its unit where there is one.
QUESTIONS: write the {n_questions} questions most likely to be asked about the paragraphs.
Answer each on a line "A: <answer>": the words from the text, or an amount with its unit.

"""
    + LAYOUT,
    # v3: a program; the proxy computes the values (router.program), the model only sets up.
    "program": """Text:
{context}

Nobody has asked a question yet. Write Python code that computes every quantity that
can be derived from the text, step by step, up to the quantity the text builds up to.
One assignment per line, using only numbers and earlier variables, each with a comment
that asks the question the variable answers, e.g.
eggs_sold = 16 - 3 - 4  # How many eggs does Janet sell each day?
Write only the code.""",
}

# Passes 1..k-1 of a budget that re-asks: pass 0's questions, numbered, answered again.
REASK = """Text:
{context}

Answer each question below about this text. For each one, write its line "Q<n>: ..." as
given, solve it step by step in a line "Work: ...", then give a line "A<n>: " followed by
{answer}.

{questions}"""


class ChatBackend(Protocol):
    def chat(self, messages: list[dict], *, model: str, **params: object): ...


class StreamingBackend(ChatBackend, Protocol):
    """A backend a pass can stop halfway (`router.upstream.OpenAIBackend` is one)."""

    def stream(
        self, messages: list[dict], *, model: str, **params: Any
    ) -> Iterator[StreamDelta]: ...


class PassPreempted(Exception):
    """A user request arrived: the pass stopped reading and closed its call, to run again
    once the upstream is idle. Not a failure: its job is neither failed nor retried."""


@dataclass(frozen=True)
class SleepBudget:
    passes: int = 1
    max_tokens: int = 768
    temperature: float = 0.7
    n_questions: int = 3
    prompt: str = ""  # a key of TEMPLATES; "": the one the context's answer format names
    adaptive: bool = False  # `passes` is a cap: stop once the answers are settled
    reask: bool = False  # passes after the first answer the first pass's questions again

    def __post_init__(self) -> None:
        if self.prompt and self.prompt not in TEMPLATES:
            known = ", ".join(sorted(TEMPLATES))
            raise ConfigError(f"unknown sleep prompt {self.prompt!r}; known: {known}")

    def prompt_for(self, fmt: AnswerFormat) -> str:
        return self.prompt or fmt.sleep_prompt

    def stops_after(self, passes: Sequence[PassResult], fmt: AnswerFormat) -> bool:
        """An adaptive budget samples no more once the passes so far are settled."""
        return self.adaptive and settled([p.parsed for p in passes], fmt.vote_key)

    def reasked(self, passes: Sequence[PassResult], fmt: AnswerFormat) -> tuple[str, ...]:
        """The questions the next pass answers again: pass 0's, when this budget re-asks;
        none (a pass of its own) for pass 0, a first pass that asked nothing, or a program
        prompt, whose steps are computed exactly and sampled as whole programs."""
        if not self.reask or not passes or self.prompt_for(fmt) in PROGRAM_PROMPTS:
            return ()
        return tuple(dict.fromkeys(a.question for a in passes[0].parsed.anticipated))


@dataclass(frozen=True)
class LearnedContext:
    text: str
    anticipated: tuple[Anticipated, ...]
    passes: int
    prompt_tokens: int = 0
    completion_tokens: int = 0
    truncated_passes: int = 0
    empty_passes: int = 0
    raw: tuple[str, ...] = field(default=(), repr=False)

    @property
    def sleep_tokens(self) -> int:
        return self.completion_tokens


def sleep_messages(
    context: str, n_questions: int = 3, prompt: str = "solve"
) -> list[dict[str, str]]:
    prompt = TEMPLATES[prompt].format(context=context.strip(), n_questions=n_questions)
    return [{"role": "system", "content": SYSTEM}, {"role": "user", "content": prompt}]


def reask_messages(
    context: str, questions: Sequence[str], fmt: AnswerFormat
) -> list[dict[str, str]]:
    listed = "\n".join(f"Q{n}: {q}" for n, q in enumerate(questions, 1))
    prompt = REASK.format(context=context.strip(), answer=fmt.reask_answer, questions=listed)
    return [{"role": "system", "content": SYSTEM}, {"role": "user", "content": prompt}]


@dataclass(frozen=True)
class PassResult:
    """One sleep-time pass, kept whole so that any k can be rebuilt from passes 0..k-1."""

    index: int
    raw: str
    parsed: ParsedPass
    prompt_tokens: int
    completion_tokens: int
    truncated: bool
    latency_s: float


def sleep_pass(
    backend: ChatBackend,
    model: str,
    context: str,
    index: int,
    budget: SleepBudget = SleepBudget(),
    *,
    stop: Callable[[], bool] | None = None,
    fmt: AnswerFormat | None = None,
    questions: Sequence[str] = (),
) -> PassResult:
    """Pass 0 is greedy; pass i > 0 samples with seed i, so passes are reproducible and
    a budget of k passes is exactly passes 0..k-1 (collection reuses them across k).
    `questions` (`SleepBudget.reasked`): answer these again instead of a pass of its own.

    With `stop`, a backend that streams is read delta by delta and the pass raises
    PassPreempted as soon as `stop()` holds (a chat-only backend runs the call whole)."""
    fmt = fmt or answer_format(None)
    prompt = budget.prompt_for(fmt)
    temperature = 0.0 if index == 0 else budget.temperature
    if questions:
        messages = reask_messages(context, questions, fmt)
    else:
        messages = sleep_messages(context, budget.n_questions, prompt)
    params: dict[str, Any] = {
        "max_tokens": budget.max_tokens,
        "temperature": temperature,
        "seed": index,
    }
    if stop is not None and hasattr(backend, "stream"):
        result = _stoppable(backend, messages, model, params, stop)  # type: ignore[arg-type]
    else:
        result = backend.chat(messages, model=model, **params)
    return PassResult(
        index=index,
        raw=result.text,
        parsed=(
            parse_reasked(result.text, questions, fmt)
            if questions
            else parse_pass(result.text, prompt, fmt)
        ),
        prompt_tokens=result.usage.prompt_tokens,
        completion_tokens=result.usage.completion_tokens,
        truncated=result.finish_reason == "length",
        latency_s=result.latency_s,
    )


def _stoppable(
    backend: StreamingBackend,
    messages: list[dict],
    model: str,
    params: dict[str, Any],
    stop: Callable[[], bool],
) -> ChatResult:
    """The call streamed, `stop()` asked before it and after each delta; closing the
    deltas' iterator closes the upstream stream."""
    if stop():
        raise PassPreempted("a user request arrived before the pass began")
    started = time.monotonic()
    deltas = backend.stream(messages, model=model, **params)
    pieces: list[str] = []
    last = StreamDelta("")
    try:
        for delta in deltas:
            if delta.finish_reason is None and stop():  # a finished answer is kept
                raise PassPreempted(f"a user request arrived after {len(pieces)} deltas")
            pieces.append(delta.text)
            last = delta
    finally:
        close = getattr(deltas, "close", None)
        if close is not None:
            close()
    text = "".join(pieces)
    # An upstream that ignores include_usage still has its sleep-time work counted (and
    # charged to its key), as the whole call's client estimates it.
    usage = last.usage or Usage(
        estimate_prompt_tokens(messages), estimate_tokens(text), estimated=True
    )
    return ChatResult(text, last.finish_reason, usage, time.monotonic() - started, model)


def learned_context(
    passes: list[PassResult], fmt: AnswerFormat | None = None, context: str = ""
) -> LearnedContext:
    """With a format that wants them, the facts computed from `context`'s tables join the
    passes' notes and anticipated answers (exact, so they cost no sleep-time tokens)."""
    fmt = fmt or answer_format(None)
    text, anticipated = combine([p.parsed for p in passes], fmt.vote_key)
    if fmt.table_facts and context:
        text, anticipated = with_facts(text, anticipated, table_facts(context))
    return LearnedContext(
        text=text,
        anticipated=anticipated,
        passes=len(passes),
        prompt_tokens=sum(p.prompt_tokens for p in passes),
        completion_tokens=sum(p.completion_tokens for p in passes),
        truncated_passes=sum(p.truncated for p in passes),
        empty_passes=sum(p.parsed.empty for p in passes),
        raw=tuple(p.raw for p in passes),
    )


def run_sleep(
    backend: ChatBackend,
    model: str,
    context: str,
    budget: SleepBudget = SleepBudget(),
    fmt: AnswerFormat | None = None,
) -> LearnedContext:
    """Passes 0..k-1; an adaptive budget stops at the first settled count."""
    fmt = fmt or answer_format(None)
    passes: list[PassResult] = []
    while len(passes) < budget.passes and not budget.stops_after(passes, fmt):
        asked = budget.reasked(passes, fmt)
        passes.append(
            sleep_pass(backend, model, context, len(passes), budget, fmt=fmt, questions=asked)
        )
    return learned_context(passes, fmt, context)
