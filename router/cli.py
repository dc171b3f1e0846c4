"""`sleeptime` command line: one subcommand per module, each `main(argv) -> int`.

The online commands are ours; the offline ones (`collect`, `train`, `bench`, ...) plug
in through the `sleeptime.commands` entry-point group, which `training` declares in
pyproject.toml, the way simonw/llm's built-ins use the registry outside plugins use. So
this package imports nothing of `training/`, and a proxy installed without the offline
package still has a working `sleeptime serve`. Subcommands are imported only when
chosen, so `sleeptime --help` stays fast.
"""

from __future__ import annotations

import ast
import importlib
import importlib.metadata
import importlib.util
import os
import sys

from router.errors import SleeptimeError

GROUP = "sleeptime.commands"
# name -> (module with main(argv) -> int, one-line help)
ONLINE: dict[str, tuple[str, str]] = {
    "serve": ("router.commands.serve", "the OpenAI-compatible proxy with sleep-time compute"),
    "local": ("router.commands.local", "serve the embedded model on 127.0.0.1 until Ctrl-C"),
    "models": ("router.commands.models", "assemble and verify the embedded models"),
    "keys": ("router.commands.keys", "create, list and revoke client keys"),
}


def commands() -> dict[str, tuple[str, str]]:
    """Ours, then every plugin's; an entry point's help is its module docstring's summary."""
    found = dict(ONLINE)
    for point in importlib.metadata.entry_points(group=GROUP):
        if point.name not in found:
            found[point.name] = (point.module, _summary(point.module))
    return found


def _summary(module: str) -> str:
    """From the module's spec, not an import: `--help` must not load every command."""
    spec = importlib.util.find_spec(module)
    origin = spec.origin if spec else None
    if not origin:
        return ""

    with open(origin, encoding="utf-8") as source:
        doc = ast.get_docstring(ast.parse(source.read())) or ""
    line = doc.split("\n", 1)[0]
    line = line.split(": ", 1)[1] if line.startswith("`") and ": " in line else line
    return line.rstrip(".")


def usage(found: dict[str, tuple[str, str]]) -> str:
    width = max(map(len, found))
    lines = [f"  {name:<{width}}  {text}" for name, (_, text) in found.items()]
    return (
        "usage: sleeptime <command> [options]\n\ncommands:\n"
        + "\n".join(lines)
        + ("\n\nRun `sleeptime <command> --help` for a command's options.")
    )


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else list(argv)
    found = commands()
    if not args or args[0] in {"-h", "--help", "help"}:
        print(usage(found))
        return 0
    name, rest = args[0], args[1:]
    if name not in found:
        print(f"sleeptime: unknown command {name!r}\n\n{usage(found)}", file=sys.stderr)
        return 2
    module = importlib.import_module(found[name][0])
    try:
        return int(module.main(rest))
    except KeyboardInterrupt:
        print("\ninterrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # `sleeptime ... | head`: the reader left, nothing to say
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141
    except Exception as exc:
        message = user_error(exc)
        if message is None:
            raise
        print(f"sleeptime {name}: {message}", file=sys.stderr)
        return 1


def user_error(exc: Exception) -> str | None:
    """The one line to print for an error the user can fix, or None: a bug, shown in full.

    Ours, a policy file that is not one (`policies` imports nothing of ours, so its error is
    its own), and a path that is not there: a traceback would only hide the line that says
    what to do."""
    from policies import PolicyError

    if isinstance(exc, SleeptimeError | PolicyError):
        return str(exc)
    if isinstance(exc, FileNotFoundError | NotADirectoryError | IsADirectoryError):
        return f"{exc.strerror}: {exc.filename}"
    return None


if __name__ == "__main__":
    sys.exit(main())
