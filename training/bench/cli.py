"""`sleeptime bench proxy|soak|replicas|scoring|replay|pool`: the benchmarks, one module each.

proxy    the proxy's overhead against calling the upstream directly (`overhead`)
soak     the proxy under steady load for minutes: errors and memory over time (`soak`)
replicas N proxies on one shared store against one SQLite proxy (`replicas`)
scoring  what the trained router adds to one request (`scoring`)
replay   a dataset's queries through the real proxy, pass-through vs policy (`live_replay`)
pool     several live replays as one sample, from their files alone (`pool`)
"""

from __future__ import annotations

import argparse
import sys

from training.bench import overhead, replicas, scoring, soak


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="sleeptime bench", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)  # fmt: skip
    sub = p.add_subparsers(dest="what", required=True)
    overhead.add_parser(sub)
    soak.add_parser(sub)
    replicas.add_parser(sub)
    scoring.add_parser(sub)
    sub.add_parser("replay", add_help=False, help="a dataset through the proxy: pass-through vs "
                   "the trained policy (`sleeptime bench replay --help`)")  # fmt: skip
    sub.add_parser("pool", add_help=False, help="several replay files as one sample, paired "
                   "difference and all (`sleeptime bench pool --help`)")  # fmt: skip
    return p


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["replay"]:
        from training.bench import live_replay

        return live_replay.main(argv[1:])
    if argv[:1] == ["pool"]:
        from training.bench import pool

        return pool.main(argv[1:])
    args = parser().parse_args(argv)
    runs = {
        "proxy": overhead.main,
        "soak": soak.main,
        "replicas": replicas.main,
        "scoring": scoring.main,
    }
    return runs[args.what](args)


if __name__ == "__main__":
    sys.exit(main())
