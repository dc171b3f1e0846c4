"""`sleeptime collect`: run every (context x sleep budget) and (query x rung x c or c') once.

The result is an outcome table with full information (see training.outcomes).
Every LLM response is cached on disk under its full request, so re-running is
free and a killed run resumes where it stopped; a context's sleep passes are
shared by all its sleep budgets (k passes = passes 0..k-1); with --adaptive a budget is
a cap, and a context stops sampling once its answers are settled (router.sleep_votes).
--sleep-from DIR answers on another table's passes (another model's). Ctrl-C stops within
seconds: queued contexts are dropped, no new LLM call starts, and every answer
already got back stays in the cache for the rerun.

The defaults are the plan of the committed gsm8k-multi table (50 contexts, one
sleep pass, rungs 0,1,3 on c and 0,1 on c'); see docs/training.md.
"""

from __future__ import annotations

import json
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

from tqdm import tqdm

from router.answer_formats import AnswerFormat, answer_format, gold
from router.answering import answer
from router.connect import open_upstream
from router.errors import ConfigError
from router.ladder import rung
from router.settings import load_settings
from router.sleep import (
    ChatBackend,
    LearnedContext,
    PassResult,
    SleepBudget,
    learned_context,
    sleep_pass,
)
from router.sleep_votes import passes_needed
from training.commands.collect_args import parse_args
from training.datasets import LoadReport, Query, StatefulProblem, load_dataset
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
from training.sleep_source import RecordedPasses, load_recorded
from training.threads import check, run_all


@dataclass(frozen=True)
class CollectPlan:
    sleep_budgets: tuple[int, ...] = (1,)
    rungs_raw: tuple[int, ...] = (0, 1, 3)
    rungs_learned: tuple[int, ...] = (0, 1)
    sleep: SleepBudget = field(default_factory=SleepBudget)  # adaptive: budgets are caps
    note_lines: int | None = None  # learned lines a query's prompt carries; None: the format's

    def format_of(self, problem: StatefulProblem) -> AnswerFormat:
        """The problem's format, with this plan's note lines where it sets them (measuring
        compact notes on a format that carries the whole learned context)."""
        fmt = answer_format(problem.answer_format)
        return fmt if self.note_lines is None else replace(fmt, note_lines=self.note_lines)

    def calls_per_query(self) -> int:
        return len(self.rungs_raw) + len(self.sleep_budgets) * len(self.rungs_learned)


@dataclass
class ContextResult:
    outcomes: list[Outcome]
    passes: list[PassResult]


@dataclass(frozen=True)
class _Learned:
    """One sleep budget's learned context, as its rows record it."""

    budget: int  # k: the passes asked for (an adaptive budget's cap)
    notes: LearnedContext  # built from the passes spent
    latency_s: float
    model: str  # the model that ran the passes


def collect_problem(
    backend: ChatBackend,
    model: str,
    dataset: str,
    problem: StatefulProblem,
    plan: CollectPlan,
    on_answer: Callable[[], None] = lambda: None,
    recorded: RecordedPasses | None = None,
) -> ContextResult:
    """`recorded`: another table's passes instead of this model's (`--sleep-from`)."""
    fmt = plan.format_of(problem)
    wants_learned = problem.has_context and bool(plan.rungs_learned)
    max_k = max(plan.sleep_budgets, default=0) if wants_learned else 0
    rows = []
    # All of c's answers, then the passes, then all of c''s: consecutive calls share the
    # longest prompt prefix, which the upstream's prompt cache then reads once per side
    # instead of once per query (on a CPU, reading a context costs as much as answering).
    for query in problem.queries:
        for level in plan.rungs_raw:
            rows.append(_outcome(backend, model, dataset, problem, query, level, None, fmt))
            on_answer()
    passes: list[PassResult] = []
    while len(passes) < max_k and not plan.sleep.stops_after(passes, fmt):
        if recorded is not None:
            passes.append(recorded.get(problem, len(passes)))
        else:
            asked = plan.sleep.reasked(passes, fmt)
            passes.append(
                sleep_pass(
                    backend,
                    model,
                    problem.context,
                    len(passes),
                    plan.sleep,
                    fmt=fmt,
                    questions=asked,
                )
            )
    parsed = [p.parsed for p in passes]
    for k in (k for k in dict.fromkeys(plan.sleep_budgets) if k <= max_k):
        spent = passes_needed(parsed, k, fmt.vote_key) if plan.sleep.adaptive else k
        used = passes[:spent]
        notes = learned_context(used, fmt, problem.context)
        sleep_model = recorded.model if recorded is not None else model
        learned = _Learned(k, notes, sum(p.latency_s for p in used), sleep_model)
        for query in problem.queries:
            for level in plan.rungs_learned:
                rows.append(_outcome(backend, model, dataset, problem, query, level, learned, fmt))
                on_answer()
    return ContextResult(rows, passes)


def _outcome(
    backend: ChatBackend,
    model: str,
    dataset: str,
    problem: StatefulProblem,
    query: Query,
    level: int,
    learned: _Learned | None,
    fmt: AnswerFormat,
) -> Outcome:
    notes = learned.notes if learned else None
    result = answer(backend, model, problem.context, query.question, rung(level), notes, fmt=fmt)
    return Outcome(
        dataset=dataset,
        context_id=problem.id,
        query_id=query.id,
        query_kind=query.kind,
        queries_in_context=len(problem.queries),
        sleep_passes=learned.budget if learned else 0,
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
        sleep_latency_s=round(learned.latency_s, 4) if learned else 0.0,
        sleep_passes_spent=notes.passes if notes else 0,
        test_model=model,
        sleep_model=learned.model if learned else "",
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
    recorded: RecordedPasses | None = None,
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
            lambda p: collect_problem(stoppable, model, dataset, p, plan, tick, recorded),
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


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv, __doc__ or "")
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
    recorded = load_recorded(args.sleep_from) if args.sleep_from else None
    if recorded is not None:
        recorded.check(problems)  # before the model starts
    # Passes taken from another table are read as that table wrote them.
    prompt = recorded.prompt if recorded is not None else args.sleep_prompt
    reask = recorded.reask if recorded is not None else args.reask
    sleep = SleepBudget(
        max_tokens=args.sleep_max_tokens, prompt=prompt, adaptive=args.adaptive, reask=reask
    )
    plan = CollectPlan(
        args.sleep_budgets, args.rungs_raw, args.rungs_learned, sleep, args.note_lines
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
            recorded=recorded,
        )
        summary |= {
            "model": upstream.model,
            "sleep_model": recorded.model if recorded is not None else upstream.model,
            "cache_hits": backend.hits,
            "llm_calls": backend.misses,
        }
    summary |= {
        "dataset": args.dataset,
        "offset": args.offset,
        "load_report": report.summary(),
        "plan": asdict(plan),
        "sleep_from": str(args.sleep_from or ""),
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
