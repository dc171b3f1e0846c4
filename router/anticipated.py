"""An anticipated question with its answer, as sleep-time work leaves it on a context."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Anticipated:
    question: str
    answer: str
    support: int = 1  # passes that asked this question
    agreement: float = 1.0  # share of those passes that gave the majority answer
