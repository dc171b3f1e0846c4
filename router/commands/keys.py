"""`sleeptime keys`: create, list and revoke client keys, on the store directly.

    sleeptime keys create --name NAME [--rpm N] [--tpm N] [--budget-usd X]
    sleeptime keys list [--json]
    sleeptime keys revoke NAME

Keys work once the proxy has a master key (SLEEPTIME_MASTER_KEY); `create` prints the
key once, on stdout, and the store keeps only its hash. A running proxy sees a new or
revoked key within a second. Use the same --store, --db or --config as `sleeptime serve`.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

from router.apikeys import mint
from router.settings import load_settings
from router.store import open_store, store_url_of
from router.store.base import ApiKey, KeyExists, Store

USAGE_ERROR = 2


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="sleeptime keys",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--config", help="a TOML settings file")
    p.add_argument("--store", help="the store's URL (default: the one `sleeptime serve` uses)")
    p.add_argument("--db", type=Path, help="a SQLite store's file (--store sqlite:///DB)")
    sub = p.add_subparsers(dest="action", required=True)
    create = sub.add_parser("create", help="a new key, printed once")
    create.add_argument("--name", required=True, help="unique among live keys; used in metrics")
    create.add_argument("--rpm", type=int, default=0, help="requests per minute (0: default)")
    create.add_argument("--tpm", type=int, default=0, help="tokens per minute (0: default)")
    create.add_argument("--budget-usd", type=float, help="dollars it may spend (default: none)")
    listing = sub.add_parser("list", help="every key: prefix, limits, spend, revoked")
    listing.add_argument("--json", action="store_true", help="one JSON array")
    revoke = sub.add_parser("revoke", help="refuse a key from now on")
    revoke.add_argument("name", help="the key's name")
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    settings = load_settings(args.config).replace(db_path=args.db, store_url=args.store)
    store = open_store(store_url_of(settings))
    try:
        return ACTIONS[args.action](store, args)
    finally:
        store.close()


def create(store: Store, args: argparse.Namespace) -> int:
    try:
        key, record = mint(args.name, rpm=args.rpm, tpm=args.tpm, budget_usd=args.budget_usd)
        store.create_key(record)
    except (ValueError, KeyExists) as exc:
        print(f"sleeptime keys: {exc}", file=sys.stderr)
        return USAGE_ERROR
    print(key, flush=True)
    print(
        f"key {record.name!r} created; it is shown only this once: store it now",
        file=sys.stderr,
    )
    return 0


def list_keys(store: Store, args: argparse.Namespace) -> int:
    spend = store.spend_by_tenant()
    rows = [view(key, spend.get(key.tenant, 0.0)) for key in store.list_keys()]
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    print(f"{'name':<20} {'prefix':<10} {'rpm':>6} {'tpm':>8} {'budget':>10} {'spend':>10}  state")
    for row in rows:
        budget = "-" if row["budget_usd"] is None else f"{row['budget_usd']:.2f}"
        state = "revoked" if row["revoked"] else "live"
        print(
            f"{row['name']:<20} {row['prefix']:<10} {row['rpm']:>6} {row['tpm']:>8} "
            f"{budget:>10} {row['spend_usd']:>10.4f}  {state}"
        )
    return 0


def revoke(store: Store, args: argparse.Namespace) -> int:
    revoked = store.revoke_key(args.name)
    if revoked is None:
        print(f"sleeptime keys: no live key named {args.name!r}", file=sys.stderr)
        return USAGE_ERROR
    print(f"key {revoked.name!r} revoked", file=sys.stderr)
    return 0


def view(key: ApiKey, spend_usd: float) -> dict[str, Any]:
    created = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(key.created))
    return {
        "name": key.name,
        "prefix": key.prefix,
        "created": created,
        "revoked": not key.live,
        "rpm": key.rpm,
        "tpm": key.tpm,
        "budget_usd": key.budget_usd,
        "spend_usd": round(spend_usd, 6),
    }


ACTIONS = {"create": create, "list": list_keys, "revoke": revoke}

if __name__ == "__main__":
    sys.exit(main())
