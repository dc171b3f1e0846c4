"""`sleeptime bench proxy`: what the proxy adds to a request, against calling the upstream directly.

Three processes on 127.0.0.1: a fake upstream (bare asyncio HTTP, one fixed
completion), the real proxy (`sleeptime serve`, default settings, its own
SQLite store in a temporary folder) in front of it, and this one, driving both
with the same requests from N keep-alive clients; direct and proxied rounds
alternate, so both sides see the same machine.

The upstream answers in `--upstream-ms` on average, 0.5-1.5 times it at random
(a fixed delay locks the clients into one burst per period, and the bench then
measures bursts), and writes the delay into the completion's id: overhead is
computed on latency minus each request's own delay, so the jitter cancels.
Each client starts at a random moment within one mean upstream delay, as
independent users arrive: started in the same instant, 32 clients would send
32 requests in one burst at every round's start, and those first requests alone
fill the slowest 1 % on both sides (measured: 20 of 20, on both), so p99 would
measure the bench's start, not the proxy; `--lockstep` starts them together.
`--upstream-ms 0` is a saturation test, where latency is mostly queueing
(clients / throughput). The proxy's CPU time per request comes from /proc and
holds even when other work on the machine disturbs wall-clock figures. The
load generator speaks minimal HTTP/1.1 itself: a client library would spend
more CPU per request than the proxy, taken from the processes measured.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import statistics
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from router.errors import ConfigError
from training.bench.fake_upstream import new_loop
from training.bench.load import Client, Samples, chat_request, proxy_before_upstream

TARGET_P50_MS, TARGET_P99_MS = 2.0, 10.0
DEFAULT_UPSTREAM_MS = 50.0


async def _round(
    port: int,
    concurrency: int,
    requests: int,
    into: Samples,
    spread_s: float = 0.0,
    key: str = "sk-bench",
) -> None:
    clients = [await Client.open(port) for _ in range(concurrency)]
    request, remaining = chat_request(port, key=key), [requests]

    async def user(client: Client) -> None:
        await asyncio.sleep(random.uniform(0.0, spread_s))
        while remaining[0] > 0:
            remaining[0] -= 1
            latency, delay = await client.send(request)
            into.latencies.append(latency)
            into.net.append(latency - delay)

    started = time.perf_counter()
    await asyncio.gather(*(user(c) for c in clients))
    into.wall_s += time.perf_counter() - started
    for client in clients:
        client.writer.close()


@dataclass(frozen=True)
class Side:
    p50_ms: float
    p99_ms: float
    rps: float
    requests: int
    net_p50_ms: float  # latency minus the upstream's delay
    net_p99_ms: float


@dataclass(frozen=True)
class Level:
    concurrency: int
    direct: Side
    proxy: Side
    proxy_cpu_us_per_request: float | None

    @property
    def overhead_ms_p50(self) -> float:
        return self.proxy.net_p50_ms - self.direct.net_p50_ms

    @property
    def overhead_ms_p99(self) -> float:
        return self.proxy.net_p99_ms - self.direct.net_p99_ms


def _side(samples: Samples) -> Side:
    raw, net = sorted(samples.latencies), sorted(samples.net)
    p99 = min(len(raw) - 1, int(len(raw) * 0.99))
    return Side(
        p50_ms=statistics.median(raw) * 1e3,
        p99_ms=raw[p99] * 1e3,
        rps=len(raw) / samples.wall_s,
        requests=len(raw),
        net_p50_ms=statistics.median(net) * 1e3,
        net_p99_ms=net[p99] * 1e3,
    )


async def _level(
    ports: dict[str, int], proxy_pid: int, concurrency: int, args: argparse.Namespace, key: str
) -> Level:
    """Warm both, then alternate direct and proxied rounds so drift hits both alike."""
    requests = _requests_at(concurrency, args.requests)
    spread_s = 0.0 if args.lockstep else args.upstream_ms / 1000.0
    for port in ports.values():
        await _round(port, concurrency, 20 * concurrency, Samples([], []), spread_s, key)
    got = {name: Samples([], []) for name in ports}
    for _ in range(args.rounds):
        for name, port in ports.items():
            before = _cpu_seconds(proxy_pid)
            await _round(port, concurrency, requests // args.rounds, got[name], spread_s, key)
            got[name].cpu_s += _cpu_seconds(proxy_pid) - before  # only the proxy's is used
    proxy = got["proxy"]
    cpu = proxy.cpu_s / len(proxy.latencies) * 1e6 if proxy.cpu_s else None
    return Level(concurrency, _side(got["direct"]), _side(proxy), cpu)


def _requests_at(concurrency: int, most: int) -> int:
    """Fewer requests for fewer clients (one client at 50 ms makes 20 a second), at least 200."""
    return min(most, max(200, 100 * concurrency))


def _cpu_seconds(pid: int) -> float:
    """utime + stime of a process, from /proc; 0 where there is no /proc."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


# Processes.


def _run(args: argparse.Namespace) -> list[Level]:
    levels = [int(c) for c in args.concurrency.split(",")]
    with proxy_before_upstream(args.upstream_ms, "sleeptime-bench-") as p:
        ports = {"direct": p.upstream_port, "proxy": p.proxy_port}
        driven = _levels(ports, p.proxy_pid, levels, args, p.keys[0])  # a client key checked
        return new_loop().run_until_complete(driven)


async def _levels(
    ports: dict[str, int], proxy_pid: int, levels: list[int], args: argparse.Namespace, key: str
) -> list[Level]:
    results = []
    if not args.json:
        print(HEADER)
    for concurrency in levels:
        results.append(await _level(ports, proxy_pid, concurrency, args, key))
        if not args.json:
            _print_level(results[-1])
    return results


# Output.


HEADER = (
    f"{'clients':>7} | {'direct p50':>10} {'p99':>8} {'req/s':>6} | "
    f"{'proxy p50':>9} {'p99':>8} {'req/s':>6} | {'overhead p50':>12} {'p99':>7} | cpu/req"
)


def _print_level(level: Level) -> None:
    d, p = level.direct, level.proxy
    cpu = f"{level.proxy_cpu_us_per_request:.0f} us" if level.proxy_cpu_us_per_request else "-"
    print(
        f"{level.concurrency:>7} | {d.p50_ms:>8.2f}ms {d.p99_ms:>6.2f}ms {d.rps:>6.0f} | "
        f"{p.p50_ms:>7.2f}ms {p.p99_ms:>6.2f}ms {p.rps:>6.0f} | "
        f"{level.overhead_ms_p50:>10.2f}ms {level.overhead_ms_p99:>5.2f}ms | {cpu}",
        flush=True,
    )


def summary(levels: list[Level], upstream_ms: float, lockstep: bool = False) -> dict[str, object]:
    """The overhead at 32 clients (or the highest level run) leads, for machines."""
    top = next((v for v in levels if v.concurrency == 32), max(levels, key=lambda v: v.concurrency))
    return {
        "overhead_ms_p50": round(top.overhead_ms_p50, 3),
        "overhead_ms_p99": round(top.overhead_ms_p99, 3),
        "at_concurrency": top.concurrency,
        "meets_target": top.overhead_ms_p50 <= TARGET_P50_MS
        and top.overhead_ms_p99 <= TARGET_P99_MS,
        "target_ms": {"p50": TARGET_P50_MS, "p99": TARGET_P99_MS},
        "upstream_ms": upstream_ms,
        "lockstep": lockstep,
        "levels": [_level_json(v) for v in levels],
        "cpu_count": os.cpu_count(),
        "load_average_1m": round(os.getloadavg()[0], 2),
    }


def _level_json(level: Level) -> dict[str, object]:
    overheads = {"overhead_ms_p50": level.overhead_ms_p50, "overhead_ms_p99": level.overhead_ms_p99}
    return {**asdict(level), **{k: round(v, 3) for k, v in overheads.items()}}


def add_parser(sub: argparse._SubParsersAction) -> None:
    proxy = sub.add_parser("proxy", help="the proxy's overhead against a direct call")
    add = proxy.add_argument
    add("--requests", type=int, default=2000, help="most requests per side and level; under 20 "
        "clients, 100 per client (default 2000)")  # fmt: skip
    add("--concurrency", default="1,8,32", help="client counts (default 1,8,32)")
    add("--rounds", type=int, default=4, help="alternating rounds per level (default 4)")
    add("--upstream-ms", type=float, default=DEFAULT_UPSTREAM_MS, help="the fake upstream's mean "
        f"answer time in ms (default {DEFAULT_UPSTREAM_MS:g}; 0: a saturation test)")  # fmt: skip
    add("--lockstep", action="store_true", help="start each round's clients in the same instant "
        "(default: spread over one mean upstream delay)")  # fmt: skip
    add("--json", action="store_true", help="print one JSON object")


def main(args: argparse.Namespace) -> int:
    if not args.rounds <= args.requests <= 200_000:
        raise ConfigError("--requests must be between --rounds and 200000")
    result = summary(_run(args), args.upstream_ms, args.lockstep)
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        print(
            f"overhead at {result['at_concurrency']} clients: p50 {result['overhead_ms_p50']} ms, "
            f"p99 {result['overhead_ms_p99']} ms (target {TARGET_P50_MS:g} / {TARGET_P99_MS:g}); "
            f"load average {result['load_average_1m']} on {result['cpu_count']} cores"
        )
    return 0
