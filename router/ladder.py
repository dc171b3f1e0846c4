"""The test-time budget ladder: how much an answer may think, from nothing to double-checked.

Small models ignore length instructions, so each rung's `max_tokens` is the
budget that is actually enforced (by the upstream); an answer cut off by it is
reported as truncated, not silently graded.
"""

from __future__ import annotations

from dataclasses import dataclass

FORMAT = 'End with a last line of the form "Answer: <number>".'
BARE = "Reply with the final number only, no words."


@dataclass(frozen=True)
class Rung:
    """`effort` says how much to think; the answer format adds how to state the answer
    (`router.answer_formats`), so one ladder serves numbers, spans and text. `instruction`
    and `max_tokens` are the number format's, kept as they were measured."""

    level: int
    name: str
    effort: str  # "" for the bare rung: the format's own "answer only" line stands alone
    max_tokens: int
    reasoning_effort: str | None = None  # sent only to upstreams that support it

    @property
    def instruction(self) -> str:
        """The number format's; `AnswerFormat.instruction(rung.effort)` for any format."""
        return f"{self.effort} {FORMAT}" if self.effort else BARE

    def request_params(
        self, *, supports_reasoning_effort: bool = False, extra_tokens: int = 0
    ) -> dict[str, object]:
        params: dict[str, object] = {"max_tokens": self.max_tokens + extra_tokens}
        if supports_reasoning_effort and self.reasoning_effort:
            params["reasoning_effort"] = self.reasoning_effort
        return params


LADDER: tuple[Rung, ...] = (
    Rung(0, "answer", "", 16, "minimal"),
    Rung(1, "brief", "Use one short sentence of reasoning at most.", 64, "low"),
    Rung(2, "short", "Reason in at most three short steps.", 160, "low"),
    Rung(3, "steps", "Think step by step.", 400, "medium"),
    Rung(
        4,
        "careful",
        "Think step by step, then double-check every calculation before answering.",
        700,
        "high",
    ),
)


def rung(name_or_level: str | int) -> Rung:
    for candidate in LADDER:
        if name_or_level in (candidate.name, candidate.level):
            return candidate
    names = ", ".join(f"{r.level}={r.name}" for r in LADDER)
    raise KeyError(f"unknown rung {name_or_level!r}; rungs: {names}")
