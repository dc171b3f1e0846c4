"""`sleeptime collect`: run every (context x sleep budget) and (query x rung x c or c') once.

The result is an outcome table with full information (see training.outcomes).
Every LLM response is cached on disk under its full request, so re-running is
free and a killed run resumes where it stopped; a context's sleep passes are
shared by all its sleep budgets (k passes = passes 0..k-1).
"""

from __future__ import annotations

import argparse
import json
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path

from tqdm import tqdm

from router.answering import answer
from router.connect import open_upstream
from router.grading import answers_match
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


@dataclass(frozen=True)
class CollectPlan:
    sleep_budgets: tuple[int, ...] = (1, 3)
    rungs_raw: tuple[int, ...] = tuple(r.level for r in LADDER)
    rungs_learned: tuple[int, ...] = (0, 1, 2)
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
    max_k = max(plan.sleep_budgets, default=0) if problem.has_context else 0
    passes = [sleep_pass(backend, model, problem.context, i, plan.sleep) for i in range(max_k)]
    learned = {k: learned_context(passes[:k]) for k in plan.sleep_budgets if k <= max_k}
    rows = []
    for query in problem.queries:
        for level in plan.rungs_raw:
            rows.append(_outcome(backend, model, dataset, problem, query, level, None, 0.0))
            on_answer()
        for k, notes in learned.items():
            sleep_s = sum(p.latency_s for p in passes[:k])
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
    result = answer(backend, model, problem.context, query.question, rung(level), notes)
    return Outcome(
        dataset=dataset,
        context_id=problem.id,
        query_id=query.id,
        query_kind=query.kind,
        queries_in_context=len(problem.queries),
        sleep_passes=notes.passes if notes else 0,
        rung=level,
        correct=answers_match(result.extracted, query.answer),
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
    with ThreadPoolExecutor(max_workers=max(1, concurrency)) as pool:
        results = list(
            pool.map(lambda p: collect_problem(backend, model, dataset, p, plan, tick), problems)
        )
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


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="sleeptime collect", description=__doc__)
    parser.add_argument("--dataset", default="gsm8k", help="gsm8k, gsm8k-multi or a JSONL path")
    parser.add_argument("--limit", type=int, default=20, help="contexts to run (0: all)")
    parser.add_argument("--offset", type=int, default=0)
    parser.add_argument("--out", type=Path, required=True, help="output folder")
    parser.add_argument("--sleep-budgets", default="1,3", help="numbers of sleep passes k")
    parser.add_argument("--rungs-raw", default="0,1,2,3,4", help="rungs answered on c")
    parser.add_argument("--rungs-learned", default="0,1,2", help="rungs answered on c'")
    parser.add_argument("--sleep-max-tokens", type=int, default=SleepBudget.max_tokens)
    parser.add_argument("--sleep-prompt", default=SleepBudget.prompt, choices=sorted(TEMPLATES))
    parser.add_argument("--concurrency", type=int, default=2)
    parser.add_argument(
        "--include-no-context",
        action="store_true",
        help="also run problems with an empty context (nothing to think about at sleep time)",
    )
    parser.add_argument("--local-model", default=None)
    parser.add_argument("--upstream-url", default=None)
    parser.add_argument("--upstream-key", default=None)
    parser.add_argument("--upstream-model", default=None)
    parser.add_argument("--cache", type=Path, default=None, help="response cache (SQLite)")
    parser.add_argument("--config", default=None)
    parser.add_argument("--json", action="store_true")
    return parser.parse_args(argv)


def _ints(text: str) -> tuple[int, ...]:
    return tuple(int(x) for x in text.split(",") if x.strip())


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
    plan = CollectPlan(
        _ints(args.sleep_budgets),
        _ints(args.rungs_raw),
        _ints(args.rungs_learned),
        SleepBudget(max_tokens=args.sleep_max_tokens, prompt=args.sleep_prompt),
    )
    cache = ResponseCache(args.cache or settings.cache_dir / "llm-responses.sqlite")
    say = (lambda _m: None) if args.json else print
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
