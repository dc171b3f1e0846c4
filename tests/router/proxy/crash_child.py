"""The proxy as the crash test runs it: `sleeptime serve` in a child process, output to a file.

A module of its own, preloaded by a multiprocessing forkserver: the CLI and the app
(about 1.5 s of imports, more on a busy machine) are imported once, and each of the test's
20-odd restarts forks from there instead of starting an interpreter.
"""

from __future__ import annotations

import os

import router.cli


def serve(argv: list[str], log: str) -> int:
    fd = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    os.dup2(fd, 1)
    os.dup2(fd, 2)
    for name in [name for name in os.environ if name.startswith("SLEEPTIME_")]:
        del os.environ[name]  # the flags say everything; nothing of the caller's setup
    return router.cli.main(["serve", *argv])
