"""`sleeptime bench soak`: the proxy under steady load for minutes; errors and memory over time.

The same three processes as `bench proxy` (a fake upstream, the real proxy
with its own store and sleep-time worker, this load generator), all on
127.0.0.1. N keep-alive clients send chat requests without pause for
`--minutes`; every request carries one of `--contexts` distinct contexts, so
the proxy keeps identifying, counting and queueing contexts and writing
records the whole time, as it would in front of real traffic. The proxy's
resident memory is sampled from /proc every few seconds.

Printed: requests, errors (any answer but 200, or a broken connection),
throughput, RSS at the start (after a warm-up) and at the end, its peak, and
its growth over the second half of the run, which is what "flat" means here:
caches fill in the first minutes, a leak keeps growing after.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from training.bench.fake_upstream import new_loop
from training.bench.load import Client, chat_request, metric_total, proxy_before_upstream

WARMUP_S = 20.0
SAMPLE_S = 5.0


@dataclass(frozen=True)
class SoakResult:
    minutes: float
    clients: int
    contexts: int
    requests: int
    errors: int
    rps: float
    rss_start_mb: float  # after the warm-up
    rss_half_mb: float  # at half time: from here to the end is what "flat" is judged on
    rss_end_mb: float
    rss_peak_mb: float
    rss_growth_second_half_mb: float
    records_dropped: float


def soak_request(port: int, context: int, keys: tuple[str, ...]) -> bytes:
    messages = [
        {"role": "system", "content": f"Document {context}: the shop sells {context} apples."},
        {"role": "user", "content": "How many apples does the shop sell?"},
    ]
    return chat_request(port, messages, key=keys[context % len(keys)])


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


async def _drive(
    port: int, pid: int, keys: tuple[str, ...], args: argparse.Namespace
) -> tuple[int, int, list[tuple]]:
    requests = [soak_request(port, i, keys) for i in range(args.contexts)]
    counts = {"sent": 0, "errors": 0}
    deadline = time.monotonic() + args.minutes * 60
    samples: list[tuple[float, float]] = []

    async def user(index: int) -> None:
        client, turn = None, index
        while time.monotonic() < deadline:
            try:
                client = client or await Client.open(port)
                await client.send(requests[turn % len(requests)])
            except (OSError, RuntimeError, asyncio.IncompleteReadError):
                counts["errors"] += 1
                client = None
            counts["sent"] += 1
            turn += args.clients

    async def sample() -> None:
        started = time.monotonic()
        while time.monotonic() < deadline:
            samples.append((time.monotonic() - started, rss_mb(pid)))
            await asyncio.sleep(SAMPLE_S)
        samples.append((time.monotonic() - started, rss_mb(pid)))

    await asyncio.gather(sample(), *(user(i) for i in range(args.clients)))
    return counts["sent"], counts["errors"], samples


def run(args: argparse.Namespace) -> SoakResult:
    with proxy_before_upstream(args.upstream_ms, "sleeptime-soak-") as p:
        started = time.monotonic()
        driven = _drive(p.proxy_port, p.proxy_pid, p.keys, args)
        sent, errors, samples = new_loop().run_until_complete(driven)
        seconds = time.monotonic() - started
        dropped = metric_total(p.proxy_port, p.master_key, "sleeptime_records_dropped")
    steady = [mb for t, mb in samples if t >= min(WARMUP_S, seconds / 4)] or [samples[-1][1]]
    half = [mb for t, mb in samples if t >= seconds / 2] or [samples[-1][1]]
    return SoakResult(
        minutes=round(seconds / 60, 2),
        clients=args.clients,
        contexts=args.contexts,
        requests=sent,
        errors=errors,
        rps=round(sent / seconds, 1),
        rss_start_mb=round(steady[0], 1),
        rss_half_mb=round(half[0], 1),
        rss_end_mb=round(samples[-1][1], 1),
        rss_peak_mb=round(max(mb for _, mb in samples), 1),
        rss_growth_second_half_mb=round(half[-1] - half[0], 1),
        records_dropped=dropped,
    )


def add_parser(sub: argparse._SubParsersAction) -> None:
    soak = sub.add_parser("soak", help="steady load for minutes: errors and the proxy's memory")
    soak.add_argument("--minutes", type=float, default=10.0, help="how long (default 10)")
    soak.add_argument("--clients", type=int, default=32, help="concurrent clients (default 32)")
    soak.add_argument("--contexts", type=int, default=2000, help="distinct contexts (default 2000)")
    soak.add_argument("--upstream-ms", type=float, default=50.0,
                      help="the fake upstream's mean answer time in ms (default 50)")  # fmt: skip
    soak.add_argument("--json", action="store_true", help="print one JSON object")


def main(args: argparse.Namespace) -> int:
    result = run(args)
    if args.json:
        print(json.dumps(asdict(result), indent=2))
    else:
        print(
            f"soak: {result.requests} requests in {result.minutes} min at {result.clients} "
            f"clients ({result.rps} req/s), {result.errors} errors; proxy RSS "
            f"{result.rss_start_mb} MB -> {result.rss_half_mb} MB at half time -> "
            f"{result.rss_end_mb} MB (peak {result.rss_peak_mb}, "
            f"second half {result.rss_growth_second_half_mb:+} MB); "
            f"records dropped {result.records_dropped:g}"
        )
    return 0 if result.errors == 0 else 1
