"""The one module that imports the llama.cpp runtime (xllamacpp).

It runs in a child process (`python -m router.llama_server ...`) started by
`router.local_server.LocalServer`: llama.cpp's HTTP server lives in native
threads of that process, so a crash there never takes the caller down, and the
caller can always reclaim the cores by ending the process.
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading


def build_params(args: argparse.Namespace):  # -> xllamacpp.CommonParams
    try:
        import xllamacpp
    except ImportError as exc:  # pragma: no cover - depends on the install
        raise SystemExit(
            f"xllamacpp is not installed: pip install 'sleeptime[local]' ({exc})"
        ) from exc
    params = xllamacpp.CommonParams()
    params.model.path = args.model
    params.hostnames = [args.host]
    params.port = args.port
    params.n_ctx = args.ctx
    params.n_parallel = args.parallel
    params.model_alias = {args.alias}  # a set: a plain string would become a set of letters
    params.use_jinja = True
    params.cache_prompt = True
    params.verbosity = 1
    if args.threads > 0:
        params.cpuparams.n_threads = args.threads
        params.cpuparams_batch.n_threads = args.threads
    return params


def serve(args: argparse.Namespace) -> int:
    import xllamacpp

    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    server = xllamacpp.Server(build_params(args))  # blocks until the model is loaded
    print(f"sleeptime-llama ready on {args.host}:{args.port}", file=sys.stderr, flush=True)
    stop.wait()
    del server
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m router.llama_server")
    parser.add_argument("--model", required=True)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--alias", required=True)
    parser.add_argument("--ctx", type=int, default=8192)
    parser.add_argument("--parallel", type=int, default=2)
    parser.add_argument("--threads", type=int, default=0)
    parser.add_argument("--host", default="127.0.0.1")
    return serve(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
