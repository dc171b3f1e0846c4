"""Sleep passes another outcome table recorded, served instead of calling a model.

`collect --sleep-from DIR` answers on learned contexts that another model built: a 0.5B
model at test time on the 1.5B model's passes, without two llama.cpp servers at once.
Each pass's raw text is parsed again by the current parser, as a fresh pass would be
(a `program` pass is evaluated by `router.program`, never run; a re-asked pass of a
`--reask` table is read against pass 0's questions); its tokens and latency are the
recorded ones, since the sleep-time work was paid by the table that did it.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from router.answer_formats import answer_format
from router.errors import ConfigError
from router.sleep import PassResult, SleepBudget
from router.sleep_parse import parse_pass, parse_reasked
from training.datasets import StatefulProblem
from training.outcomes import CONTEXTS, RUN, SLEEP, read_jsonl


@dataclass(frozen=True)
class RecordedPasses:
    folder: Path
    model: str  # the model that ran the passes (the table's run.json)
    prompt: str  # the sleep prompt they were written for; "": each format's own
    reask: bool  # passes after the first answered pass 0's questions again
    records: dict[str, dict[int, dict[str, Any]]]  # context id -> pass index -> record
    contexts: dict[str, str]  # context id -> its text, where the table kept its problems

    def check(self, problems: Sequence[StatefulProblem]) -> None:
        """Before any model call: every context is there, with the same text."""
        missing = [p.id for p in problems if p.has_context and p.id not in self.records]
        if missing:
            raise ConfigError(
                f"--sleep-from {self.folder}: no sleep passes for context {missing[0]!r}"
                f" ({len(missing)} of {len(problems)} missing): the same dataset and "
                "--offset as that table?"
            )
        for problem in problems:
            known = self.contexts.get(problem.id)
            if known is not None and known != problem.context:
                raise ConfigError(
                    f"--sleep-from {self.folder}: context {problem.id!r} has another text there"
                )

    def get(self, problem: StatefulProblem, index: int) -> PassResult:
        record = self.records.get(problem.id, {}).get(index)
        if record is None:
            have = len(self.records.get(problem.id, {}))
            raise ConfigError(
                f"--sleep-from {self.folder}: context {problem.id!r} has {have} sleep passes; "
                f"pass {index} is needed (a larger --sleep-budgets than that table's?)"
            )
        fmt = answer_format(problem.answer_format)
        raw = str(record["raw"])
        budget = SleepBudget(prompt=self.prompt, reask=self.reask)
        asked = budget.reasked([self.get(problem, 0)], fmt) if index and self.reask else ()
        return PassResult(
            index=index,
            raw=raw,
            parsed=(
                parse_reasked(raw, asked, fmt)
                if asked
                else parse_pass(raw, budget.prompt_for(fmt), fmt)
            ),
            prompt_tokens=int(record["prompt_tokens"]),
            completion_tokens=int(record["completion_tokens"]),
            truncated=bool(record["truncated"]),
            latency_s=float(record["latency_s"]),
        )


def load_recorded(folder: Path) -> RecordedPasses:
    run = _run(folder)
    records: dict[str, dict[int, dict[str, Any]]] = defaultdict(dict)
    for record in read_jsonl(_sleep_file(folder)):
        records[str(record["context_id"])][int(record["pass"])] = record
    contexts = {}
    if (folder / CONTEXTS).is_file():
        contexts = {str(c["id"]): str(c["context"]) for c in read_jsonl(folder / CONTEXTS)}
    sleep = run.get("plan", {}).get("sleep", {})
    prompt, reask = str(sleep.get("prompt", "")), bool(sleep.get("reask", False))
    return RecordedPasses(folder, str(run["model"]), prompt, reask, dict(records), contexts)


def _sleep_file(folder: Path) -> Path:
    for path in (folder / SLEEP, folder / SLEEP.removesuffix(".gz")):
        if path.is_file():
            return path
    raise ConfigError(f"--sleep-from {folder}: no {SLEEP} (nor {SLEEP.removesuffix('.gz')})")


def _run(folder: Path) -> dict[str, Any]:
    """The table's run.json: which model ran its passes, and with which prompt."""
    path = folder / RUN
    try:
        run = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise ConfigError(f"--sleep-from {folder}: cannot read {RUN}: {exc}") from exc
    if not isinstance(run, dict) or not run.get("model"):
        raise ConfigError(f"--sleep-from {folder}: {RUN} names no model")
    return run
