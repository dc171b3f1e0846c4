"""`sleeptime local`: serve the embedded model's OpenAI API on 127.0.0.1 until Ctrl-C."""

from __future__ import annotations

import argparse
import threading

from router.local_server import start_local_server
from router.settings import load_settings


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="sleeptime local", description=__doc__)
    parser.add_argument("--local-model", default=None)
    parser.add_argument("--config", default=None)
    args = parser.parse_args(argv)
    settings = load_settings(args.config).replace(local_model=args.local_model)
    with start_local_server(settings) as server:
        print(f"OpenAI API at {server.base_url} (model {server.model}); Ctrl-C stops it",
              flush=True)  # fmt: skip
        threading.Event().wait()
    return 0
