"""The test-time budget ladder: how much an answer may think, from nothing to double-checked.

Small models ignore length instructions, so each rung's `max_tokens` is the
budget that is actually enforced (by the upstream); an answer cut off by it is
reported as truncated, not silently graded.
"""

from __future__ import annotations

from dataclasses import dataclass

FORMAT = 'End with a last line of the form "Answer: <number>".'


@dataclass(frozen=True)
class Rung:
    level: int
    name: str
    instruction: str
    max_tokens: int
    reasoning_effort: str | None = None  # sent only to upstreams that support it

    def request_params(self, *, supports_reasoning_effort: bool = False) -> dict[str, object]:
        params: dict[str, object] = {"max_tokens": self.max_tokens}
        if supports_reasoning_effort and self.reasoning_effort:
            params["reasoning_effort"] = self.reasoning_effort
        return params


LADDER: tuple[Rung, ...] = (
    Rung(0, "answer", "Reply with the final number only, no words.", 16, "minimal"),
    Rung(1, "brief", f"Use one short sentence of reasoning at most. {FORMAT}", 64, "low"),
    Rung(2, "short", f"Reason in at most three short steps. {FORMAT}", 160, "low"),
    Rung(3, "steps", f"Think step by step. {FORMAT}", 400, "medium"),
    Rung(
        4,
        "careful",
        f"Think step by step, then double-check every calculation before answering. {FORMAT}",
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
