"""`sleeptime demo`: the main job on embedded defaults, end to end on one real problem.

It shows the product's claim on a single Stateful GSM8K problem: a sleep-time
pass on the context alone, then the question answered twice, cheaply on the
learned context and with full reasoning on the raw context, with the tokens and
seconds of every phase side by side.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import asdict, dataclass

from router.answering import Answer, answer
from router.connect import open_upstream
from router.errors import ConfigError
from router.grading import answers_match
from router.ladder import LADDER, rung
from router.settings import load_settings
from router.sleep import SleepBudget, run_sleep
from training.datasets import load_stateful_gsm8k


@dataclass(frozen=True)
class PhaseRow:
    phase: str
    answer: str | None
    correct: bool | None
    prompt_tokens: int
    completion_tokens: int
    seconds: float
    truncated: bool = False


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="sleeptime demo", description=__doc__)
    names = " ".join(f"{r.level}={r.name}" for r in LADDER)
    add = parser.add_argument
    add("--problem", type=int, default=0,
        help="which problem of Stateful GSM8K test, by index from 0 (default 0)")
    add("--passes", type=int, default=1, help="sleep-time passes k on its context (default 1)")
    add("--low-rung", type=_rung, default="answer",
        help=f"rung on the learned context c', by name or level: {names} (default answer)")
    add("--full-rung", type=_rung, default="careful",
        help=f"rung on the raw context c, by name or level: {names} (default careful)")
    add("--local-model", default=None,
        help="the embedded model (default: the local_model setting, qwen2.5-coder-1.5b)")
    add("--upstream-url", default=None,
        help="an OpenAI-compatible base URL with its /v1 (default: the embedded model)")
    add("--upstream-key", default=None,
        help="the upstream's key (better: SLEEPTIME_UPSTREAM_KEY; flags show in `ps`)")
    add("--config", default=None, help="settings TOML file")
    add("--json", action="store_true", help="print one JSON object")  # fmt: skip
    return parser.parse_args(argv)


def _rung(text: str) -> str:
    try:
        return rung(int(text) if text.isdigit() else text).name
    except KeyError as exc:
        raise argparse.ArgumentTypeError(exc.args[0]) from None


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    settings = load_settings(args.config).replace(
        local_model=args.local_model, upstream_url=args.upstream_url, upstream_key=args.upstream_key
    )
    problems = load_stateful_gsm8k()
    if not 0 <= args.problem < len(problems):
        last = len(problems) - 1
        raise ConfigError(f"--problem {args.problem}: Stateful GSM8K test has 0 to {last}")
    problem = problems[args.problem]
    query = problem.queries[0]
    say = (lambda _msg: None) if args.json else print
    started = time.perf_counter()
    status = (lambda m: print(m, file=sys.stderr)) if args.json else print  # stdout: the JSON
    with open_upstream(settings, on_status=status) as upstream:
        say(f"upstream ready in {time.perf_counter() - started:.1f} s: {upstream.model}")
        say(f"\nproblem {problem.id}\ncontext: {problem.context}\nquery:   {query.question}")
        t0 = time.perf_counter()
        learned = run_sleep(
            upstream.backend, upstream.model, problem.context, SleepBudget(passes=args.passes)
        )
        sleep_s = time.perf_counter() - t0
        say(f"\nlearned context ({learned.completion_tokens} sleep tokens, {sleep_s:.1f} s):")
        say(learned.text or "(empty)")
        low = answer(
            upstream.backend,
            upstream.model,
            problem.context,
            query.question,
            rung(args.low_rung),
            learned,
        )
        full = answer(
            upstream.backend, upstream.model, problem.context, query.question, rung(args.full_rung)
        )
    rows = [
        PhaseRow(
            "sleep (context only)",
            None,
            None,
            learned.prompt_tokens,
            learned.completion_tokens,
            sleep_s,
            learned.truncated_passes > 0,
        ),
        _row(f"test: c' + rung {args.low_rung}", low, query.answer),
        _row(f"test: c + rung {args.full_rung}", full, query.answer),
    ]
    summary = _summary(problem.id, query.answer, rows, settings.test_token_price_ratio)
    if args.json:
        print(json.dumps(summary, indent=2))
    else:
        print("\n" + _table(rows, query.answer))
        print(_ratios(summary))
    return 0


def _row(phase: str, result: Answer, gold: str) -> PhaseRow:
    return PhaseRow(
        phase,
        result.extracted,
        answers_match(result.extracted, gold),
        result.prompt_tokens,
        result.completion_tokens,
        result.latency_s,
        result.truncated,
    )


def _summary(problem_id: str, gold: str, rows: list[PhaseRow], t: float) -> dict[str, object]:
    sleep, low, full = rows
    return {
        "problem": problem_id,
        "gold": gold,
        "phases": [asdict(r) for r in rows],
        "test_token_ratio": full.completion_tokens / max(low.completion_tokens, 1),
        # The paper's cost with all sleep tokens charged to this one query (1 query per context).
        "cost_low_1_query": t * low.completion_tokens + sleep.completion_tokens,
        "cost_full": t * full.completion_tokens,
        "price_ratio_t": t,
        "ladder": [r.name for r in LADDER],
    }


def _table(rows: list[PhaseRow], gold: str) -> str:
    header = f"{'phase':<26} {'answer':>9} {'ok':>4} {'prompt':>7} {'compl.':>7} {'sec':>6}"
    lines = [f"gold answer: {gold}", header, "-" * len(header)]
    for r in rows:
        ok = "" if r.correct is None else ("yes" if r.correct else "no")
        cut = " (truncated)" if r.truncated else ""
        lines.append(
            f"{r.phase:<26} {r.answer or '-':>9} {ok:>4} {r.prompt_tokens:>7} "
            f"{r.completion_tokens:>7} {r.seconds:>6.1f}{cut}"
        )
    return "\n".join(lines)


def _ratios(summary: dict[str, object]) -> str:
    return (
        f"\ntest-time completion tokens, full / learned: {summary['test_token_ratio']:.1f}x\n"
        f"cost (t={summary['price_ratio_t']:g}, one query): learned path "
        f"{summary['cost_low_1_query']:.0f} vs full {summary['cost_full']:.0f}; every further "
        "query on this context reuses the sleep-time work"
    )
