"""`sleeptime local`: serve the embedded model's OpenAI API on 127.0.0.1 until Ctrl-C."""

from __future__ import annotations

import argparse
import threading

from router.local_server import start_local_server
from router.model_files import MODELS
from router.settings import load_settings


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="sleeptime local", description=__doc__)
    parser.add_argument(
        "--local-model", default=None, help=f"the embedded model, one of {list(MODELS)} "
        "(default: the local_model setting, qwen2.5-coder-1.5b)",
    )  # fmt: skip
    parser.add_argument("--port", type=_port, default=0, help="port (default 0: a free one)")
    parser.add_argument(
        "--host", default="127.0.0.1",
        help="address to listen on (default 127.0.0.1; 0.0.0.0 exposes it, with no key)",
    )  # fmt: skip
    parser.add_argument("--config", default=None, help="a TOML settings file")
    args = parser.parse_args(argv)
    settings = load_settings(args.config).replace(local_model=args.local_model)
    with start_local_server(settings, port=args.port, host=args.host) as server:
        print(f"OpenAI API at {server.base_url} (model {server.model}); Ctrl-C stops it",
              flush=True)  # fmt: skip
        threading.Event().wait()
    return 0


def _port(text: str) -> int:
    value = int(text)
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"{value} is not a port (0-65535; 0: a free one)")
    return value
