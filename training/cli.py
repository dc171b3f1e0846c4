"""`sleeptime` command line: one subcommand per module, each `main(argv) -> int`.

Subcommands are imported only when chosen, so `sleeptime --help` stays fast and
the online path (`serve`) never imports offline training code.
"""

from __future__ import annotations

import importlib
import sys

from router.errors import SleeptimeError

# name -> (module with main(argv) -> int, one-line help)
COMMANDS: dict[str, tuple[str, str]] = {
    "demo": ("training.demo", "run the main job: sleep-time vs test-time on a real problem"),
    "collect": ("training.collect", "run the benchmark grid and store an outcome table"),
    "report": ("training.report", "figures and ratios from stored outcome tables (no LLM)"),
    "predictability": ("training.predictability_cmd", "fit and score predictability estimators"),
    "logprob": ("training.logprob_cmd", "log p(query | context) per query, from llama.cpp"),
    "train": ("training.train_cmd", "Optuna policy search by replay, every trial in MLflow"),
    "evaluate": ("training.evaluate_cmd", "replay a policy file beside the built-ins"),
    "models": ("training.models_cmd", "assemble and verify the embedded models"),
    "local": ("training.local_cmd", "serve the embedded model on 127.0.0.1 until Ctrl-C"),
    "serve": ("training.serve_cmd", "the OpenAI-compatible proxy with sleep-time compute"),
    "export": ("training.export_cmd", "the proxy's labeled requests as an outcome table"),
    "bench": (
        "training.bench_proxy",
        "`bench proxy|soak|scoring|replay|pool`: overhead, soak, router time, savings",
    ),
}


def usage() -> str:
    width = max(map(len, COMMANDS))
    lines = [f"  {name:<{width}}  {text}" for name, (_, text) in COMMANDS.items()]
    return (
        "usage: sleeptime <command> [options]\n\ncommands:\n"
        + "\n".join(lines)
        + ("\n\nRun `sleeptime <command> --help` for a command's options.")
    )


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else list(argv)
    if not args or args[0] in {"-h", "--help", "help"}:
        print(usage())
        return 0
    name, rest = args[0], args[1:]
    if name not in COMMANDS:
        print(f"sleeptime: unknown command {name!r}\n\n{usage()}", file=sys.stderr)
        return 2
    module = importlib.import_module(COMMANDS[name][0])
    try:
        return int(module.main(rest))
    except SleeptimeError as exc:
        print(f"sleeptime {name}: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("\ninterrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
