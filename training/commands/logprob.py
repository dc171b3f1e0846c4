"""`sleeptime logprob DIR`: log p(query | context) for every query of an outcome table.

The paper's own predictability measure, from the local llama.cpp server (see
`router.logprob`), written to DIR/logprobs.csv.gz; `sleeptime predictability`
then adds its quintile analysis beside the estimators'. About 0.1 s per query
token with the 1.5B model on 2 cores; rows already in the file are kept, so a
cut run resumes.
"""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from router.errors import InputError
from router.local_server import start_local_server
from router.logprob import LlamaLogprob
from router.settings import load_settings
from training.outcomes import CONTEXTS, read_jsonl, read_rows, write_rows

LOGPROBS = "logprobs.csv.gz"
SAVE_EVERY = 20


@dataclass(frozen=True)
class LogprobRow:
    context_id: str
    query_id: str
    tokens: int
    logprob: float  # natural log, summed over the query's tokens
    mean_logprob: float


def read_logprobs(folder: Path) -> dict[str, LogprobRow]:
    path = folder / LOGPROBS
    return {r.query_id: r for r in read_rows(path, LogprobRow)} if path.exists() else {}


def score_folder(folder: Path, scorer: LlamaLogprob, *, progress: bool = True) -> int:
    """Scores the queries not yet in the file; returns how many it scored."""
    done = read_logprobs(folder)
    todo = [
        (problem, query)
        for problem in read_jsonl(folder / CONTEXTS)
        for query in problem["queries"]
        if query["id"] not in done
    ]
    started, unsaved = time.monotonic(), 0
    try:
        for index, (problem, query) in enumerate(todo, 1):
            result = scorer.score(problem["context"], query["question"])
            done[query["id"]] = LogprobRow(
                problem["id"], query["id"], result.tokens, result.total, result.mean
            )
            unsaved += 1
            if index % SAVE_EVERY == 0 or index == len(todo):
                write_rows(folder / LOGPROBS, done.values(), LogprobRow)
                unsaved = 0
                if progress:
                    rate = (time.monotonic() - started) / index
                    print(f"{index}/{len(todo)} queries, {rate:.1f} s each", file=sys.stderr)
    finally:  # Ctrl-C or an error: keep every query scored so far; a rerun does the rest
        if unsaved:
            write_rows(folder / LOGPROBS, done.values(), LogprobRow)
    return len(todo)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="sleeptime logprob", description=__doc__)
    parser.add_argument("outcomes", type=Path, help="a folder written by collect")
    parser.add_argument(
        "--local-model", default=None,
        help="the embedded model to score with (default: the local_model setting)",
    )  # fmt: skip
    parser.add_argument(
        "--upstream-url", default=None,
        help="a running llama.cpp server's base URL (it must return prompt logprobs; default: "
        "start the embedded model)",
    )  # fmt: skip
    parser.add_argument("--config", default=None, help="a TOML settings file")
    args = parser.parse_args(argv)
    if not (args.outcomes / CONTEXTS).is_file():  # before a model starts: minutes
        raise InputError(
            f"{args.outcomes} has no {CONTEXTS}: give a folder `sleeptime collect` wrote"
        )
    settings = load_settings(args.config).replace(
        local_model=args.local_model, upstream_url=args.upstream_url
    )
    if settings.uses_local_model:
        server = start_local_server(settings, on_status=print)
        try:
            with LlamaLogprob(server.base_url) as scorer:
                scored = score_folder(args.outcomes, scorer)
        finally:
            server.stop()
    else:
        with LlamaLogprob(settings.upstream_url) as scorer:
            scored = score_folder(args.outcomes, scorer)
    print(f"{scored} queries scored; {args.outcomes / LOGPROBS}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
