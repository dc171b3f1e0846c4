"""The flags of `sleeptime collect` (training/commands/collect.py), parsed and checked."""

from __future__ import annotations

import argparse
from pathlib import Path

from router.ladder import LADDER
from router.sleep import TEMPLATES, SleepBudget
from training.datasets import NAMED

RUNGS = " ".join(f"{r.level}={r.name}" for r in LADDER)  # "0=answer 1=brief ..." for --help


def parse_args(argv: list[str] | None, description: str = "") -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="sleeptime collect",
        description=description,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add = parser.add_argument
    add(
        "--dataset",
        default="gsm8k-multi",
        help=f"{' or '.join(sorted(NAMED))}, or the path of a JSONL file in the format of "
        "docs/training.md (default gsm8k-multi)",
    )
    add("--limit", type=int, default=50, help="contexts to run, 0: all (default 50)")
    add(
        "--offset",
        type=int,
        default=0,
        help="contexts to skip first, counted after those without a context (default 0)",
    )
    add("--out", type=Path, required=True, help="the outcome table's folder (created)")
    add(
        "--sleep-budgets",
        type=_ints,
        default="1",
        help="sleep budgets: numbers of sleep passes k on each context, comma-separated "
        "(default 1)",
    )
    add(
        "--adaptive",
        action="store_true",
        help="each sleep budget k is a cap: a context uses passes 0..j-1, j the first pass "
        "count whose last two passes agree on every question both asked (at least 2), else k",
    )
    add(
        "--reask",
        action="store_true",
        help="sleep passes after the first answer the first pass's questions again (sampled), "
        "so their answers are voted on the same questions",
    )
    add(
        "--sleep-from",
        type=Path,
        default=None,
        metavar="DIR",
        help="take the sleep passes from another table's sleep.jsonl(.gz) instead of calling "
        "the model (same dataset and contexts; its prompt and model are recorded)",
    )
    add(
        "--rungs-raw",
        type=_rungs,
        default="0,1,3",
        help=f"test-time rungs answered on the raw context c, by level: {RUNGS} (default 0,1,3)",
    )
    add(
        "--rungs-learned",
        type=_rungs,
        default="0,1",
        help=f"rungs answered on the learned context c', by level: {RUNGS}; none: c alone, "
        "no sleep passes (default 0,1)",
    )
    add(
        "--note-lines",
        type=_count,
        default=None,
        help="learned-context lines a query's prompt on c' carries, those that match it best "
        "(router.note_match); 0: the whole learned context (default: the answer format's, "
        "4 for span, the whole for number)",
    )
    add(
        "--sleep-max-tokens",
        type=int,
        default=SleepBudget.max_tokens,
        help=f"completion tokens per sleep pass (default {SleepBudget.max_tokens})",
    )
    add(
        "--sleep-prompt",
        default=SleepBudget.prompt,
        choices=sorted(TEMPLATES),
        help="what a sleep pass writes: solve, program, notes, document; see "
        "docs/training.md (default: the answer format's: solve for numbers, document for spans)",
    )
    add(
        "--concurrency",
        type=int,
        default=2,
        help="contexts in flight at once, each one LLM call at a time; also the embedded "
        "model's parallel slots (default 2)",
    )
    add(
        "--include-no-context",
        action="store_true",
        help="also run problems with an empty context (nothing to think about at sleep time)",
    )
    add(
        "--local-model",
        default=None,
        help="the embedded model when no upstream URL is set (default: local_model setting)",
    )
    add(
        "--upstream-url",
        default=None,
        help="an OpenAI-compatible base URL with its /v1 (default: the embedded model)",
    )
    add(
        "--upstream-key",
        default=None,
        help="the upstream's key (better: SLEEPTIME_UPSTREAM_KEY; flags show in `ps`)",
    )
    add("--upstream-model", default=None, help="the upstream's model (default: the first listed)")
    add(
        "--cache",
        type=Path,
        default=None,
        help="the response cache, a SQLite file (default <cache_dir>/llm-responses.sqlite)",
    )
    add("--config", default=None, help="a TOML settings file (docs/settings.md)")
    add(
        "--json",
        action="store_true",
        help="print only the run summary as JSON on stdout (no progress bar)",
    )
    return parser.parse_args(argv)


def _ints(text: str) -> tuple[int, ...]:
    try:
        values = tuple(int(x) for x in text.split(",") if x.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: expected numbers, e.g. 1,2") from None
    if not values or min(values) < 0:
        raise argparse.ArgumentTypeError(f"{text!r}: expected numbers >= 0, e.g. 1,2")
    return values


def _count(text: str) -> int:
    values = _ints(text)
    if len(values) != 1:
        raise argparse.ArgumentTypeError(f"{text!r}: expected one number >= 0")
    return values[0]


def _rungs(text: str) -> tuple[int, ...]:
    if text.strip().lower() == "none":
        return ()
    levels = _ints(text)
    unknown = sorted(set(levels) - {r.level for r in LADDER})
    if unknown:
        raise argparse.ArgumentTypeError(f"no rung {unknown[0]}; rungs by level: {RUNGS}")
    return levels
