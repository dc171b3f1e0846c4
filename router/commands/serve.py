"""`sleeptime serve`: the OpenAI-compatible proxy with sleep-time compute.

Clients change only their `base_url` to http://HOST:PORT/v1. The upstream
comes from settings (`--upstream-url`, `--upstream-key`, or
SLEEPTIME_UPSTREAM_URL / SLEEPTIME_UPSTREAM_KEY, preferable for a key since
flags are visible in `ps`); with none, the embedded model is started and
stopped with the proxy. SIGINT or SIGTERM shuts down gracefully: the worker
stops, queued records are written, the embedded model is stopped.

Clients authenticate with client keys (`sleeptime keys create`) once a master key is set
(SLEEPTIME_MASTER_KEY, or --master-key); the master key manages keys through /admin/keys.
Without one the proxy is local-only: it listens on a loopback address only, and each
client's bearer key, whatever it is, names its own tenant.

The proxy keeps its records in its store; `sleeptime aggregate` reads them into
MLflow from a process of its own, beside any number of proxies.
"""

from __future__ import annotations

import argparse
import ipaddress
import sys
from pathlib import Path
from typing import Any

from router.errors import InputError
from router.local_server import threads_line
from router.model_files import MODELS
from router.proxy.app import create_app
from router.proxy.config import ProxyConfig
from router.proxy.server import serve
from router.settings import load_settings
from router.sleep import TEMPLATES


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="sleeptime serve",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--config", help="a TOML settings file")
    p.add_argument(
        "--upstream-url",
        help="OpenAI-compatible base URL, with its /v1 (default: start the embedded model)",
    )
    p.add_argument("--upstream-key", help="the key for the upstream (clients' keys stay here)")
    p.add_argument("--upstream-model", help="what model 'sleeptime' or no model means")
    p.add_argument(
        "--host",
        help="address to listen on (default 127.0.0.1; any other needs a master key)",
    )
    p.add_argument(
        "--master-key",
        help="turns on client keys; it alone manages them (SLEEPTIME_MASTER_KEY is better: "
        "flags show in `ps`)",
    )
    p.add_argument("--port", type=int, help="port to listen on (default 8000)")
    p.add_argument(
        "--local-model",
        help="embedded model when no upstream URL is set, one of "
        f"{list(MODELS)} (default qwen2.5-coder-1.5b)",
    )
    p.add_argument(
        "--store", help="the store's URL (default sqlite:///<cache_dir>/sleeptime.sqlite)"
    )
    p.add_argument(
        "--db", type=Path, help="a SQLite store's file (the same as --store sqlite:///DB)"
    )
    p.add_argument("--salt-file", type=Path, help="tenant salt (default <cache_dir>/tenant-salt)")
    p.add_argument(
        "--router",
        choices=["passthrough", "enriched"],
        help="passthrough only meters; "
        "enriched adds the learned context when there is one (default passthrough)",
    )
    p.add_argument("--policy", type=Path, help="a trained policy file (sleeptime train)")
    p.add_argument(
        "--estimators",
        type=Path,
        help="estimators (default: the ones `sleeptime train` saved beside the policy)",
    )
    p.add_argument(
        "--max-body-bytes",
        type=int,
        help="largest request body accepted, in bytes (default 8 MiB; 413 beyond)",
    )
    p.add_argument(
        "--max-inflight-for-sleep",
        type=int,
        help="sleep-time work runs only while at most this many requests are in flight "
        "(default 0: only while idle)",
    )
    p.add_argument("--sleep-passes", type=int, help="sleep-time passes per context (default 1)")
    p.add_argument(
        "--sleep-prompt",
        choices=sorted(TEMPLATES),
        help="what a sleep pass writes: solve (the quantities the context implies and its "
        "likely questions, solved), program (Python steps, evaluated without exec), notes "
        "(stated and derivable quantities) (default solve)",
    )
    p.add_argument("--no-sleep", action="store_true", help="no sleep-time worker: a pure meter")
    p.add_argument(
        "--log-level",
        default="warning",
        help="uvicorn's log level: debug, info, warning, error (default warning)",
    )
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    settings = load_settings(args.config).replace(
        upstream_url=args.upstream_url,
        upstream_key=args.upstream_key,
        upstream_model=args.upstream_model,
        host=args.host,
        port=args.port,
        local_model=args.local_model,
        master_key=args.master_key,
    )
    check_exposure(settings.host, settings.master_key)
    config = ProxyConfig.from_settings(
        settings,
        db_path=args.db,
        store_url=args.store,
        salt_path=args.salt_file,
        router=args.router,
        max_body_bytes=args.max_body_bytes,
        max_inflight_for_sleep=args.max_inflight_for_sleep,
        sleep_passes=args.sleep_passes,
        sleep_prompt=args.sleep_prompt,
        sleep_enabled=False if args.no_sleep else None,
    )
    files = policy_files(args.policy, args.estimators) if args.policy else None
    upstream = settings.upstream_url or f"embedded {settings.local_model}"
    print(f"sleeptime proxy on http://{settings.host}:{settings.port}/v1 -> {upstream}", flush=True)
    if settings.uses_local_model:
        print(threads_line(settings.local_threads), flush=True)
    router = _policy_router(*files) if files else None
    app = create_app(config, router=router)
    serve(app, settings.host, settings.port, log_level=args.log_level)
    return 0


def check_exposure(host: str, master_key: str) -> None:
    """Local-only mode lets any bearer key in: it must not listen beyond this machine."""
    if master_key or _loopback(host):
        return
    raise InputError(
        f"--host {host} would expose a proxy without client keys: set a master key "
        "(SLEEPTIME_MASTER_KEY or --master-key) and create keys with `sleeptime keys create`, "
        "or listen on 127.0.0.1"
    )


def _loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def policy_files(policy: Path, estimators: Path | None) -> tuple[Path, Path]:
    """A policy file that loads and its estimators file, checked before anything starts (the
    embedding model takes seconds to load, the LLM minutes); else one line saying what to do."""
    from policies import PolicyError, load
    from router.predictability import estimators_for

    if not policy.is_file():
        raise InputError(f"no policy file at {policy}: give one written by `sleeptime train`")
    try:
        load(policy)
    except (PolicyError, TypeError, AttributeError, UnicodeDecodeError) as exc:
        raise InputError(f"{policy} is not a policy file: {exc}") from exc
    found = estimators or estimators_for(policy)
    if not found.is_file():
        where = "" if estimators else " (`sleeptime train` saves them beside the policy)"
        raise InputError(f"no estimators file at {found}{where}: pass --estimators FILE")
    return policy, found


def _policy_router(policy: Path, estimators: Path) -> Any:
    """The trained policy on the estimators' scores; embeddings load once, before serving.
    Imported here: sklearn and torch cost seconds at start-up to a proxy that uses no policy."""
    from router.embeddings import default_embedder
    from router.policy_router import PolicyRouter

    return PolicyRouter.from_files(policy, estimators, default_embedder().encode)


if __name__ == "__main__":
    sys.exit(main())
