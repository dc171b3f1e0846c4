"""`sleeptime collect`: run every (context x sleep budget) and (query x rung x c or c') once.

The result is an outcome table with full information (see training.outcomes).
Every LLM response is cached on disk under its full request, so re-running is
free and a killed run resumes where it stopped; a context's sleep passes are
shared by all its sleep budgets (k passes = passes 0..k-1). Ctrl-C stops within
seconds: queued contexts are dropped, no new LLM call starts, and every answer
already got back stays in the cache for the rerun.

The defaults are the plan of the committed gsm8k-multi table (50 contexts, one
sleep pass, rungs 0,1,3 on c and 0,1 on c'); see docs/training.md.
"""

from __future__ import annotations

import argparse
import json
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

from tqdm import tqdm

from router.answer_formats import answer_format, gold
from router.answering import answer
from router.connect import open_upstream
from router.errors import ConfigError
from router.ladder import LADDER, rung
from router.settings import load_settings
from router.sleep import (
    TEMPLATES,
    ChatBackend,
    LearnedContext,
    PassResult,
    SleepBudget,
    learned_context,
    sleep_pass,
)
from training.datasets import NAMED, LoadReport, Query, StatefulProblem, load_dataset
from training.llm_cache import CachingBackend, ResponseCache
from training.outcomes import (
    CONTEXTS,
    OUTCOMES,
    RUN,
    SLEEP,
    Outcome,
    write_jsonl,
    write_outcomes,
)
from training.threads import check, run_all

RUNGS = " ".join(f"{r.level}={r.name}" for r in LADDER)  # "0=answer 1=brief ..." for --help


@dataclass(frozen=True)
class CollectPlan:
    sleep_budgets: tuple[int, ...] = (1,)
    rungs_raw: tuple[int, ...] = (0, 1, 3)
    rungs_learned: tuple[int, ...] = (0, 1)
    sleep: SleepBudget = field(default_factory=SleepBudget)

    def calls_per_query(self) -> int:
        return len(self.rungs_raw) + len(self.sleep_budgets) * len(self.rungs_learned)


@dataclass
class ContextResult:
    outcomes: list[Outcome]
    passes: list[PassResult]


def collect_problem(
    backend: ChatBackend,
    model: str,
    dataset: str,
    problem: StatefulProblem,
    plan: CollectPlan,
    on_answer: Callable[[], None] = lambda: None,
) -> ContextResult:
    fmt = answer_format(problem.answer_format)
    wants_learned = problem.has_context and bool(plan.rungs_learned)
    max_k = max(plan.sleep_budgets, default=0) if wants_learned else 0
    rows = []
    # All of c's answers, then the passes, then all of c''s: consecutive calls share the
    # longest prompt prefix, which the upstream's prompt cache then reads once per side
    # instead of once per query (on a CPU, reading a context costs as much as answering).
    for query in problem.queries:
        for level in plan.rungs_raw:
            rows.append(_outcome(backend, model, dataset, problem, query, level, None, 0.0))
            on_answer()
    passes = [
        sleep_pass(backend, model, problem.context, i, plan.sleep, fmt=fmt) for i in range(max_k)
    ]
    budgets = [k for k in plan.sleep_budgets if k <= max_k]
    learned = {k: learned_context(passes[:k], fmt, problem.context) for k in budgets}
    for k, notes in learned.items():
        sleep_s = sum(p.latency_s for p in passes[:k])
        for query in problem.queries:
            for level in plan.rungs_learned:
                rows.append(
                    _outcome(backend, model, dataset, problem, query, level, notes, sleep_s)
                )
                on_answer()
    return ContextResult(rows, passes)


def _outcome(
    backend: ChatBackend,
    model: str,
    dataset: str,
    problem: StatefulProblem,
    query: Query,
    level: int,
    notes: LearnedContext | None,
    sleep_s: float,
) -> Outcome:
    fmt = answer_format(problem.answer_format)
    result = answer(backend, model, problem.context, query.question, rung(level), notes, fmt=fmt)
    return Outcome(
        dataset=dataset,
        context_id=problem.id,
        query_id=query.id,
        query_kind=query.kind,
        queries_in_context=len(problem.queries),
        sleep_passes=notes.passes if notes else 0,
        rung=level,
        correct=fmt.grade(result.extracted, gold(query.answer, query.answers, query.scale)),
        truncated=result.truncated,
        predicted=result.extracted or "",
        gold=query.answer,
        test_prompt_tokens=result.prompt_tokens,
        test_cached_prompt_tokens=result.cached_prompt_tokens,
        test_completion_tokens=result.completion_tokens,
        test_latency_s=round(result.latency_s, 4),
        sleep_prompt_tokens=notes.prompt_tokens if notes else 0,
        sleep_completion_tokens=notes.sleep_tokens if notes else 0,
        sleep_latency_s=round(sleep_s, 4),
    )


class _Stoppable:
    """The backend, refusing new calls once `stop` is set: a context in progress ends at
    its next call instead of running to its end (minutes on a local model)."""

    def __init__(self, backend: ChatBackend, stop: threading.Event) -> None:
        self._backend, self._stop = backend, stop

    def chat(self, messages: list[dict], *, model: str, **params: object) -> object:
        check(self._stop)
        return self._backend.chat(messages, model=model, **params)


def _sleep_records(problem: StatefulProblem, passes: list[PassResult]) -> list[dict[str, object]]:
    return [
        {
            "context_id": problem.id,
            "pass": p.index,
            "raw": p.raw,
            "notes": list(p.parsed.notes),
            "anticipated": [asdict(a) for a in p.parsed.anticipated],
            "rejected": p.parsed.rejected,
            "prompt_tokens": p.prompt_tokens,
            "completion_tokens": p.completion_tokens,
            "truncated": p.truncated,
            "latency_s": round(p.latency_s, 4),
        }
        for p in passes
    ]


def run_collection(
    backend: ChatBackend,
    model: str,
    dataset: str,
    problems: list[StatefulProblem],
    plan: CollectPlan,
    out_dir: Path,
    *,
    concurrency: int = 2,
    progress: bool = True,
) -> dict[str, object]:
    total = sum(len(p.queries) for p in problems) * plan.calls_per_query()
    bar = tqdm(total=total, unit="answer", disable=not progress, smoothing=0.05)
    lock = threading.Lock()

    def tick() -> None:
        with lock:
            bar.update()

    started = time.perf_counter()
    stop = threading.Event()
    stoppable = _Stoppable(backend, stop)
    try:
        results = run_all(
            lambda p: collect_problem(stoppable, model, dataset, p, plan, tick),
            problems,
            workers=concurrency,
            stop=stop,
            on_stop=_say_stopped,
        )
    finally:
        bar.close()
    out_dir.mkdir(parents=True, exist_ok=True)
    rows = write_outcomes(out_dir / OUTCOMES, (o for r in results for o in r.outcomes))
    write_jsonl(
        out_dir / SLEEP,
        (
            rec
            for p, r in zip(problems, results, strict=True)
            for rec in _sleep_records(p, r.passes)
        ),
    )
    write_jsonl(out_dir / CONTEXTS, (asdict(p) for p in problems))
    return {
        "rows": rows,
        "contexts": len(problems),
        "seconds": round(time.perf_counter() - started, 1),
    }


def _say_stopped(done: int, total: int) -> None:
    print(
        f"stopped after {done} of {total} contexts; every answer got back is in the response "
        "cache, so the same command resumes from there",
        file=sys.stderr,
    )


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="sleeptime collect",
        description=__doc__,
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


def _rungs(text: str) -> tuple[int, ...]:
    if text.strip().lower() == "none":
        return ()
    levels = _ints(text)
    unknown = sorted(set(levels) - {r.level for r in LADDER})
    if unknown:
        raise argparse.ArgumentTypeError(f"no rung {unknown[0]}; rungs by level: {RUNGS}")
    return levels


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    settings = load_settings(args.config).replace(
        local_model=args.local_model,
        upstream_url=args.upstream_url,
        upstream_key=args.upstream_key,
        upstream_model=args.upstream_model,
        local_parallel=max(args.concurrency, 1),
    )
    report = LoadReport()
    problems = load_dataset(args.dataset, report=report)
    problems = [p for p in problems if p.has_context or args.include_no_context]
    problems = problems[args.offset : args.offset + args.limit if args.limit else None]
    if not problems:
        raise ConfigError(f"no contexts in {args.dataset} at --offset {args.offset}")
    plan = CollectPlan(
        args.sleep_budgets,
        args.rungs_raw,
        args.rungs_learned,
        SleepBudget(max_tokens=args.sleep_max_tokens, prompt=args.sleep_prompt),
    )
    cache = ResponseCache(args.cache or settings.cache_dir / "llm-responses.sqlite")
    # With --json, stdout is the summary alone; which model starts, on how many threads, still
    # matters (under CPU contention it decides the run's hours), so it goes to stderr.
    say = (lambda m: print(m, file=sys.stderr)) if args.json else print
    with open_upstream(settings, on_status=say) as upstream:
        backend = CachingBackend(upstream.backend, cache)
        summary = run_collection(
            backend,
            upstream.model,
            args.dataset,
            problems,
            plan,
            args.out,
            concurrency=args.concurrency,
            progress=not args.json,
        )
        summary |= {
            "model": upstream.model,
            "cache_hits": backend.hits,
            "llm_calls": backend.misses,
        }
    summary |= {
        "dataset": args.dataset,
        "offset": args.offset,
        "load_report": report.summary(),
        "plan": asdict(plan),
    }
    (args.out / RUN).write_text(json.dumps(summary, indent=2))
    if args.json:
        print(json.dumps(summary, indent=2))
    else:
        print(
            f"{summary['rows']} outcomes from {summary['contexts']} contexts in "
            f"{summary['seconds']} s ({summary['llm_calls']} LLM calls, "
            f"{summary['cache_hits']} cached) -> {args.out}"
        )
    return 0
