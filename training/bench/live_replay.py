"""`sleeptime bench replay`: a dataset's queries through the real proxy, pass-through vs policy.

What a user of the proxy would see. One model server (the embedded model, or
`--upstream-url`) and, one after the other, two proxies in front of it:

    pass-through  the proxy as a meter: every request reaches the model as sent
    policy        the trained policy file and the estimators route each query;
                  every context was registered ahead (POST /v1/contexts) and
                  thought about at sleep time before its queries arrive

The client is the real `openai` SDK. It sends what an application would: the
context as the system message, the question as the user message, the
context named by the `X-Sleeptime-Context` header, and max_tokens of
`--client-rung` (by default the best test-time-only rung, "steps"). Without
sleeptime (pass-through) it adds that rung's instruction itself, its own best
prompt; with the policy it leaves the budget to sleeptime, which adds the
instruction of the rung the policy chose. (Leaving the client's own "think step
by step" in place beside a one-sentence budget was measured to confuse the
1.5B model: 1 of 12 right with both instructions, 8 of 12 with the budget's
alone.) Answers are graded against the dataset's gold answers exactly as
`collect` grades them.

Printed side by side: accuracy (95% interval, bootstrap over contexts), test
tokens (completion tokens the model spent answering) and prompt tokens per
query, sleep tokens per context, the amortized cost per query (t * test +
sleep / queries of that context, t = 10 as in `report`), routes taken, and the
ratios policy / pass-through. Use contexts the policy was not trained on:
`--offset` past the collected table. A killed replay resumes: run the same command
again and it asks only the queries it had not got back (`training/bench/resume.py`).
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import asdict
from pathlib import Path
from typing import Any

from router.answer_formats import answer_format, gold
from router.errors import InputError
from router.ladder import LADDER, rung
from router.local_server import free_port, start_local_server
from router.settings import Settings, load_settings
from router.sleep import TEMPLATES, SleepBudget
from training.bench.arms import Arm, Asked, ratios, summarize
from training.bench.resume import Progress, WorkMismatch, work_folder
from training.datasets import load_dataset
from training.datasets.types import StatefulProblem
from training.threads import check, run_all

T_DEFAULT = 10.0
SLEEP_WAIT_S = 1800.0
API_KEY = "sk-replay"


def context_id(problem: StatefulProblem) -> str:
    return "".join(c if c.isalnum() or c in "._:-" else "-" for c in problem.id)[:120]


def _headers(problem: StatefulProblem, delegate: bool) -> dict[str, str]:
    """The context's name; a client that delegates opts into routing (the alias "sleeptime"
    does too, but a replay says so where a reader looks)."""
    headers = {"X-Sleeptime-Context": context_id(problem)}
    return {**headers, "X-Sleeptime-Routing": "policy"} if delegate else headers


def ask(
    client: Any, problem: StatefulProblem, index: int, client_rung: str, delegate: bool
) -> Asked:
    """`delegate`: the client leaves the budget to sleeptime and sends the bare question;
    otherwise it sends its own instruction, as it would without sleeptime."""
    query = problem.queries[index]
    budget, fmt = rung(client_rung), answer_format(problem.answer_format)
    instruction = fmt.instruction(budget.effort)
    question = query.question if delegate else f"{query.question}\n{instruction}"
    messages = [
        {"role": "system", "content": problem.context},
        {"role": "user", "content": question},
    ]
    started = time.perf_counter()
    raw = client.chat.completions.with_raw_response.create(
        model="sleeptime",
        messages=messages,
        max_tokens=budget.max_tokens + fmt.extra_tokens,
        temperature=0.0,
        extra_headers=_headers(problem, delegate),
    )
    latency = time.perf_counter() - started
    completion = raw.parse()
    choice = completion.choices[0]
    text = choice.message.content or ""
    truncated = choice.finish_reason == "length"
    usage = completion.usage
    details = getattr(usage, "prompt_tokens_details", None) if usage else None
    hits = int(getattr(details, "cached_tokens", 0) or 0)
    route = raw.headers.get("x-sleeptime-route", "full")
    return Asked(
        context=problem.id,
        query=query.id,
        route=route,
        rung=raw.headers.get("x-sleeptime-rung", ""),
        correct=fmt.grade(
            fmt.extract(text, not truncated), gold(query.answer, query.answers, query.scale)
        ),
        test_tokens=0 if route == "cached" else (usage.completion_tokens if usage else 0),
        prompt_tokens=0 if route == "cached" else (usage.prompt_tokens if usage else 0),
        latency_s=latency,
        scores=raw.headers.get("x-sleeptime-scores", ""),
        check=raw.headers.get("x-sleeptime-check", ""),
        cached_prompt_tokens=0 if route == "cached" else hits,
    )


def register_and_wait(base: str, problems: list[StatefulProblem]) -> dict[str, int]:
    """Registers every context, then waits for its sleep-time work; returns sleep tokens."""
    import httpx

    headers = {"Authorization": f"Bearer {API_KEY}"}  # the same tenant as the queries
    with httpx.Client(base_url=base, timeout=30, headers=headers) as http:
        for problem in problems:
            # The workload knows how many questions each context will get, as an application
            # that registers a document usually does: the policy's sleep rule weighs it.
            body = {
                "id": context_id(problem),
                "context": problem.context,
                "expected_queries": len(problem.queries),
                "answer_format": problem.answer_format,
            }
            http.post("/contexts", json=body).raise_for_status()
        spent: dict[str, int] = {}
        deadline = time.monotonic() + SLEEP_WAIT_S
        pending = list(problems)
        while pending and time.monotonic() < deadline:
            view = http.get(f"/contexts/{context_id(pending[0])}").json()
            if view.get("status") in ("done", "failed"):
                spent[pending.pop(0).id] = int(view.get("sleep_tokens") or 0)
            else:
                time.sleep(1.0)
        if pending:
            raise TimeoutError(f"sleep-time work unfinished for {len(pending)} contexts")
        return spent


def run_arm(
    name: str,
    settings: Settings,
    problems: list[StatefulProblem],
    args: argparse.Namespace,
    folder: Path,
) -> tuple[list[Asked], dict[str, int]]:
    import openai

    from router.proxy.app import create_app
    from router.proxy.config import ProxyConfig
    from router.proxy.server import ServerThread

    policy = name == "policy"
    config = ProxyConfig.from_settings(
        settings,
        db_path=folder / f"{name}.sqlite",
        salt_path=folder / "salt",
        sleep_enabled=policy,
        sleep_passes=args.sleep_passes,
        sleep_prompt=args.sleep_prompt,
    )
    router = _policy_router(args) if policy else None
    progress = Progress(folder / f"{name}.asked.jsonl", Asked)
    done = progress.load()  # what a killed run of these inputs had already got back
    jobs = [(p, i) for p in problems for i in range(len(p.queries))]
    todo = [(p, i) for p, i in jobs if (p.id, p.queries[i].id) not in done]
    stop = threading.Event()

    def one(job: tuple[StatefulProblem, int]) -> Asked:
        check(stop)
        return progress.add(ask(client, *job, args.client_rung, delegate=policy))

    # On Ctrl-C the queries not yet asked are dropped; the proxy's graceful shutdown lets
    # those in flight come back (and be kept) for at most its 10 s.
    with ServerThread(create_app(config, router=router), free_port()) as server:
        spent = register_and_wait(server.url, problems) if policy else {}
        client = openai.OpenAI(base_url=server.url, api_key=API_KEY, timeout=900)
        for a in run_all(one, todo, workers=args.concurrency, stop=stop, on_stop=_stopped):
            done[(a.context, a.query)] = a
    return [done[(p.id, p.queries[i].id)] for p, i in jobs], spent


def _stopped(done: int, total: int) -> None:
    print(
        f"stopped after {done} of {total} queries of this arm; every answer got back is kept in "
        "the work folder, so the same command resumes from there",
        file=sys.stderr,
    )


def _policy_router(args: argparse.Namespace) -> Any:
    from router.embeddings import default_embedder
    from router.policy_router import PolicyRouter

    return PolicyRouter.from_files(args.policy, args.estimators, default_embedder().encode)


@contextlib.contextmanager
def upstream(settings: Settings) -> Iterator[Settings]:
    if not settings.uses_local_model:
        yield settings
        return
    server = start_local_server(settings, on_status=print)
    try:
        yield settings.replace(upstream_url=server.base_url, upstream_model=server.model)
    finally:
        server.stop()


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="sleeptime bench replay", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    names = " ".join(f"{r.level}={r.name}" for r in LADDER)
    p.add_argument("--dataset", default="gsm8k-multi",
                   help="gsm8k, gsm8k-multi, tatqa or a JSONL path (default gsm8k-multi)")
    p.add_argument("--offset", type=int, default=50,
                   help="contexts to skip: those the policy was trained on (default 50)")
    p.add_argument("--limit", type=int, default=10, help="contexts to replay (default 10)")
    p.add_argument("--policy", type=Path, required=True, help="a policy file (sleeptime train)")
    p.add_argument("--estimators", type=Path, default=None,
                   help="its estimators (default: NAME.estimators.pkl beside the policy)")
    p.add_argument("--client-rung", default="steps", choices=[r.name for r in LADDER],
                   help=f"the budget the client asks for, by name ({names}; default steps)")
    p.add_argument("--sleep-passes", type=int, default=1,
                   help="sleep-time passes per context in the policy arm (default 1)")
    p.add_argument("--sleep-adaptive", action="store_true",
                   help="--sleep-passes is a cap: a context stops once its answers settle")
    p.add_argument("--sleep-reask", action="store_true",
                   help="passes after the first answer the first pass's questions again")
    p.add_argument("--sleep-prompt", choices=sorted(TEMPLATES), default=SleepBudget.prompt,
                   help="the prompt the policy's table was collected with")
    p.add_argument("--concurrency", type=int, default=2,
                   help="queries in flight at once (default 2)")
    p.add_argument("--t", type=float, default=T_DEFAULT,
                   help="price of a test-time token in sleep-time tokens (default 10)")
    p.add_argument("--local-model", default=None,
                   help="the embedded model when no upstream URL is set")
    p.add_argument("--upstream-url", default=None,
                   help="an OpenAI-compatible base URL with its /v1 (default: the embedded model)")
    p.add_argument("--config", default=None, help="a TOML settings file")
    p.add_argument("--out", type=Path, default=None, help="write the JSON summary here")
    p.add_argument("--work", type=Path, default=None,
                   help="kept so a killed replay resumes (default: OUT.work beside --out; "
                   "without --out, a temporary folder)")
    p.add_argument("--json", action="store_true", help="print the summary as JSON")
    return p  # fmt: skip


def replay_settings(args: argparse.Namespace) -> Settings:
    """A flag turns its setting on; a flag left off leaves the settings (environment, file)
    to decide, so a replay can be set up either way."""
    return load_settings(args.config).replace(
        local_model=args.local_model,
        upstream_url=args.upstream_url,
        sleep_adaptive=args.sleep_adaptive or None,
        sleep_reask=args.sleep_reask or None,
    )


def main(argv: list[str] | None = None) -> int:
    from router.commands.serve import policy_files  # checked before any model starts

    args = parser().parse_args(argv)
    args.policy, args.estimators = policy_files(args.policy, args.estimators)
    settings = replay_settings(args)
    loaded = load_dataset(args.dataset, limit=args.offset + args.limit * 2)
    problems = [p for p in loaded if p.has_context][args.offset : args.offset + args.limit]
    arms: dict[str, Arm] = {}
    answered: dict[str, list[dict[str, Any]]] = {}
    work = args.work or (args.out.with_suffix(".work") if args.out else None)
    try:
        folders = work_folder(work, _inputs(args, settings))
        with folders as folder, upstream(settings) as live:
            for name in ("pass-through", "policy"):
                asked, spent = run_arm(name, live, problems, args, folder)
                arms[name] = summarize(name, asked, spent, args.t)
                answered[name] = [asdict(a) for a in asked]
                if not args.json:
                    print(_line(arms[name]), flush=True)
    except WorkMismatch as exc:
        raise InputError(str(exc)) from exc
    result = {
        "dataset": args.dataset,
        "offset": args.offset,
        "sleep_prompt": args.sleep_prompt,
        "sleep_passes": args.sleep_passes,
        "sleep_adaptive": settings.sleep_adaptive,
        "sleep_reask": settings.sleep_reask,
        "client_rung": args.client_rung,
        "t": args.t,
        "arms": {name: asdict(arm) for name, arm in arms.items()},
        **ratios(arms["pass-through"], arms["policy"]),
    }
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(result | {"queries": answered}, indent=2) + "\n")
    print(json.dumps(result, indent=2) if args.json else _ratios_line(result))
    return 0


def _inputs(args: argparse.Namespace, settings: Settings) -> dict[str, Any]:
    """What decides the answers: a work folder resumes only a replay of these."""
    files = {"policy": args.policy, "estimators": args.estimators}
    return {
        "dataset": args.dataset,
        "offset": args.offset,
        "limit": args.limit,
        "client_rung": args.client_rung,
        "sleep_passes": args.sleep_passes,
        "sleep_prompt": args.sleep_prompt,
        "sleep_adaptive": settings.sleep_adaptive,
        "sleep_reask": settings.sleep_reask,
        "model": settings.upstream_url or settings.local_model,
        **{f"{k}_sha256": _sha256(v) for k, v in files.items() if Path(v).exists()},
    }


def _sha256(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def _line(arm: Arm) -> str:
    return (
        f"{arm.name:>12}: accuracy {arm.accuracy:.3f} [{arm.accuracy_low:.3f}, "
        f"{arm.accuracy_high:.3f}] on {arm.queries} queries / {arm.contexts} contexts; "
        f"test tokens/query {arm.test_tokens:.1f}, prompt {arm.prompt_tokens:.1f}; "
        f"sleep tokens/context {arm.sleep_tokens:.1f}; cost/query {arm.cost:.1f} "
        f"({arm.full_cost:.1f} with prompt tokens, {arm.cached_prompt_tokens:.1f} cached); "
        f"routes {arm.routes}"
    )


def _ratios_line(result: dict[str, Any]) -> str:
    return (
        f"pass-through / policy: test tokens {result['test_token_ratio']}x, amortized cost "
        f"{result['cost_ratio']}x ({result['full_cost_ratio']}x with prompt tokens); "
        f"accuracy difference {result['accuracy_difference']:+.3f}"
    )
