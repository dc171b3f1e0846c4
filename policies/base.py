"""A policy is its parameters: a frozen dataclass whose fields are exactly what
Optuna tunes and MLflow logs, saved as {"name": ..., "params": {...}} JSON that
the proxy loads. Registering a class by name makes it loadable from that file.
"""

from __future__ import annotations

import json
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import asdict, fields
from pathlib import Path
from typing import Any, ClassVar, TypeVar

from policies.space import Choices, SearchSpace
from policies.types import ContextFeatures, QueryDecision, QueryFeatures, SleepDecision

REGISTRY: dict[str, type[Policy]] = {}
P = TypeVar("P", bound="Policy")


class PolicyError(ValueError):
    pass


def register(cls: type[P]) -> type[P]:
    REGISTRY[cls.name] = cls
    return cls


class Policy(ABC):
    """Decides sleep budget per context and route + rung per query."""

    name: ClassVar[str]

    @abstractmethod
    def sleep(self, context: ContextFeatures) -> SleepDecision: ...

    @abstractmethod
    def route(self, context: ContextFeatures, query: QueryFeatures) -> QueryDecision: ...

    @classmethod
    def search_space(cls, choices: Choices) -> SearchSpace:
        """What `sleeptime train` searches, in the order it asks (policies.space)."""
        return {}

    @classmethod
    def seeds(cls, choices: Choices) -> list[dict[str, Any]]:
        """Parameter sets the search starts from (the baselines it has to beat), each
        restricted to the searched parameters."""
        return []

    def probe_passes(self, expected_queries: float) -> int:
        """Sleep passes to run before the context's predictability is known: the estimators
        read it off one pass's artifacts, so a policy that would sleep on a fully predictable
        context gets one pass first, and `sleep` then says how many in all. A policy that
        never sleeps at this query count gets none. Assumes, as every built-in does, that a
        policy sleeps no less on a more predictable context."""
        return 1 if self.sleep(ContextFeatures(1.0, expected_queries)).passes > 0 else 0

    def sleep_passes(self, context: ContextFeatures) -> tuple[int, int]:
        """(passes whose learned context the queries use, passes paid for): what replay
        charges and what the proxy's worker runs. The probe is paid even where the policy
        then declines to use it."""
        used = self.sleep(context).passes
        return used, max(used, self.probe_passes(context.expected_queries))

    def params(self) -> dict[str, Any]:
        return asdict(self)  # type: ignore[call-overload]

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "params": self.params()}


def from_dict(data: dict[str, Any]) -> Policy:
    try:
        cls = REGISTRY[data["name"]]
    except (KeyError, TypeError):
        raise PolicyError(f"unknown policy {data!r:.80}; known: {sorted(REGISTRY)}") from None
    params = data.get("params", {})
    allowed = {f.name for f in fields(cls)}  # type: ignore[arg-type]
    unknown = set(params) - allowed
    if unknown:
        raise PolicyError(f"{cls.name}: unknown parameter(s) {sorted(unknown)}")
    return cls(**params)


def save(policy: Policy, path: Path, answer_formats: Sequence[str] = ()) -> Path:
    """`answer_formats`: those of the contexts it was trained on; the proxy routes no other
    (a policy file without the list was trained on numbers)."""
    data = policy.to_dict()
    if answer_formats:
        data["answer_formats"] = sorted(set(answer_formats))
    path.write_text(json.dumps(data, indent=2) + "\n")
    return path


def load(path: Path) -> Policy:
    try:
        return from_dict(json.loads(path.read_text()))
    except json.JSONDecodeError as exc:
        raise PolicyError(f"{path}: not JSON ({exc})") from exc
