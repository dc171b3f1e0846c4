"""`sleeptime bench replicas`: N proxies on one store, against one proxy on SQLite.

Each side starts the fake upstream, creates client keys in its store, starts its
proxies (`sleeptime serve`, each its own process, sleep-time work on even under load),
registers `--contexts` contexts (round robin over the proxies, so every one queues
sleep-time jobs), and sends from `--clients` keep-alive clients, round robin over the
proxies, for `--seconds`. Then it waits for the sleep-time queue to empty and counts:

    throughput, p50/p99 overhead   latency minus the fake upstream's chosen delay
    jobs per replica               finished sleep-time jobs by each proxy's /metrics
    duplicate_jobs                 jobs finished by the proxies beyond the jobs in the store
    lost_records                   acknowledged requests (200, X-Request-Id) with no record

The replicated side needs a store several processes share: `--store postgresql://...`
(an empty database: the bench creates its keys there). The SQLite side is one proxy on
a temporary file, the embedded default. The bench's keys have limits (far above the load),
so the replicas count them and sync them every `--usage-sync-s` (0: off): running it with
0 and with 1 prices the sharing of limits per request.

`--overshoot-rpm N` measures the other side of that trade instead: for each interval of
`--overshoot-sync`, two replicas, one key with rpm N, requests at `--overshoot-rps` a
second alternately through both until well past N; how many more than N were admitted.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import secrets
import statistics
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

from router.apikeys import mint
from router.local_server import free_port
from router.settings import safe_url
from router.store import open_store
from router.store.base import Store
from training.bench.fake_upstream import DELAY, content_length, new_loop
from training.bench.load import chat_request, client_keys, metric_total, run_process


@dataclass(frozen=True)
class Side:
    store: str  # the store's URL, without its password
    replicas: int
    requests: int
    errors: int
    rps: float
    overhead_ms_p50: float
    overhead_ms_p99: float
    jobs_per_replica: list[int]
    jobs_in_store: int
    duplicate_jobs: int
    lost_records: int


async def _drive(
    ports: list[int], keys: tuple[str, ...], clients: int, seconds: float
) -> tuple[list[float], list[str], int]:
    """(net latencies, request ids acknowledged, errors) of `clients` clients."""
    net: list[float] = []
    acknowledged: list[str] = []
    errors = 0
    deadline = time.monotonic() + seconds

    async def user(index: int) -> None:
        nonlocal errors
        port = ports[index % len(ports)]
        mine = [chat_request(port, key=key) for key in keys]
        reader = writer = None
        turn = index
        while time.monotonic() < deadline:
            try:
                if writer is None:
                    reader, writer = await asyncio.open_connection("127.0.0.1", port)
                assert reader is not None
                started = time.perf_counter()
                writer.write(mine[turn % len(mine)])
                head = await reader.readuntil(b"\r\n\r\n")
                body = await reader.readexactly(content_length(head))
                latency = time.perf_counter() - started
                if not head.startswith(b"HTTP/1.1 200"):
                    raise RuntimeError(head.splitlines()[0].decode())
                delay = DELAY.search(body)
                net.append(latency - (int(delay.group(1)) / 1e6 if delay else 0.0))
                acknowledged.append(_request_id(head))
            except (OSError, RuntimeError, asyncio.IncompleteReadError):
                errors += 1
                writer = None
            turn += 1

    await asyncio.gather(*(user(i) for i in range(clients)))
    return net, acknowledged, errors


def _request_id(head: bytes) -> str:
    for line in head.split(b"\r\n"):
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"x-request-id":
            return value.strip().decode()
    raise RuntimeError("an answer without X-Request-Id")


def _post(url: str, key: str, body: dict) -> None:
    data = json.dumps(body).encode()
    headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}
    request = urllib.request.Request(url, data=data, headers=headers, method="POST")
    with urllib.request.urlopen(request, timeout=10):
        pass


@contextlib.contextmanager
def _proxies(
    url: str, replicas: int, folder: Path, master: str, sync_s: float = 1.0
) -> Iterator[list[int]]:
    """The fake upstream and `replicas` proxies on the store at `url`, all ready."""
    python = sys.executable
    upstream = free_port()
    fake = [python, "-m", "training.bench.fake_upstream", "--port", str(upstream)]
    fake += ["--delay-ms", "50"]
    env = {**os.environ, "SLEEPTIME_MASTER_KEY": master, "SLEEPTIME_USAGE_SYNC_S": str(sync_s)}
    ports = [free_port() for _ in range(replicas)]
    with contextlib.ExitStack() as stack:
        models = f"http://127.0.0.1:{upstream}/v1/models"
        stack.enter_context(run_process(fake, folder / "upstream.log", models))
        for i, port in enumerate(ports):
            serve = [python, "-m", "router.commands.serve", "--port", str(port), "--store", url]
            serve += ["--upstream-url", f"http://127.0.0.1:{upstream}/v1", "--upstream-model"]
            serve += ["bench", "--salt-file", str(folder / "salt"), "--max-inflight-for-sleep"]
            serve += ["100000"]  # sleep-time work runs under load: jobs to claim
            log = folder / f"proxy-{i}.log"
            stack.enter_context(run_process(serve, log, f"http://127.0.0.1:{port}/health", env))
        yield ports


def run_side(url: str, replicas: int, args: argparse.Namespace, folder: Path) -> Side:
    master = "sk-" + secrets.token_urlsafe(32)
    keys = client_keys(url)
    store = open_store(url)
    try:
        with _proxies(url, replicas, folder, master, args.usage_sync_s) as ports:
            for i in range(args.contexts):
                port = ports[i % len(ports)]
                body = {
                    "id": f"doc-{secrets.token_hex(4)}",
                    "context": f"Document {i}: {i} apples.",
                }
                _post(f"http://127.0.0.1:{port}/v1/contexts", keys[i % len(keys)], body)
            started = time.monotonic()
            net, acknowledged, errors = new_loop().run_until_complete(
                _drive(ports, keys, args.clients, args.seconds)
            )
            seconds = time.monotonic() - started
            _settle(store, args.settle_s)
            jobs = "sleeptime_sleep_jobs_total"
            per_replica = [int(metric_total(port, master, jobs)) for port in ports]
        counts = store.job_counts()
        in_store = counts.get("done", 0) + counts.get("failed", 0)
        tenants = [key.tenant for key in store.list_keys()]
        lost = sum(1 for rid in acknowledged if not _recorded(store, tenants, rid))
    finally:
        store.close()
    net_ms = sorted(x * 1000 for x in net) or [0.0]
    return Side(
        store=safe_url(url) if "://" in url else url,
        replicas=replicas,
        requests=len(net),
        errors=errors,
        rps=round(len(net) / seconds, 1),
        overhead_ms_p50=round(statistics.median(net_ms), 3),
        overhead_ms_p99=round(net_ms[min(len(net_ms) - 1, int(0.99 * len(net_ms)))], 3),
        jobs_per_replica=per_replica,
        jobs_in_store=in_store,
        duplicate_jobs=sum(per_replica) - in_store,
        lost_records=lost,
    )


def run_overshoot(url: str, sync_s: float, args: argparse.Namespace, folder: Path) -> dict:
    """Admitted beyond a key's rpm by two replicas syncing every `sync_s`."""
    folder.mkdir(parents=True, exist_ok=True)
    master = "sk-" + secrets.token_urlsafe(32)
    rpm, rps = args.overshoot_rpm, args.overshoot_rps
    key, record = mint(f"overshoot-{secrets.token_hex(3)}", rpm=rpm)
    store = open_store(url)
    try:
        store.create_key(record)
    finally:
        store.close()
    seconds = 2.5 * rpm / rps + 2 * sync_s + 1  # past what two replicas alone would admit
    with _proxies(url, 2, folder, master, sync_s) as ports:
        statuses = new_loop().run_until_complete(_paced(ports, key, rps, seconds))
    admitted = statuses.count(200)
    return {
        "usage_sync_s": sync_s,
        "rpm": rpm,
        "rps": rps,
        "sent": len(statuses),
        "admitted": admitted,
        "overshoot": admitted - rpm,
        "other_statuses": len(statuses) - admitted - statuses.count(429),
    }


async def _paced(ports: list[int], key: str, rps: float, seconds: float) -> list[int]:
    """Statuses of requests sent at `rps` a second, round robin over the ports (open loop:
    each on its own connection, so a slow answer does not slow the pace)."""

    async def one(index: int) -> int:
        await asyncio.sleep(index / rps)
        port = ports[index % len(ports)]
        try:
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(chat_request(port, key=key))
            head = await reader.readuntil(b"\r\n\r\n")
            await reader.readexactly(content_length(head))
            writer.close()
            return int(head.split(b" ", 2)[1])
        except (OSError, asyncio.IncompleteReadError):
            return 0

    return list(await asyncio.gather(*(one(i) for i in range(int(seconds * rps)))))


def _settle(store: Store, limit_s: float) -> None:
    """Until no sleep-time job is queued or running, or `limit_s`."""
    deadline = time.monotonic() + limit_s
    while time.monotonic() < deadline:
        counts = store.job_counts()
        if not counts.get("queued") and not counts.get("running"):
            break
        time.sleep(0.2)


def _recorded(store: Store, tenants: list[str], request_id: str) -> bool:
    """Whichever key sent it: a record is found by its tenant and id."""
    return any(store.get_record(tenant, request_id) is not None for tenant in tenants)


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("replicas", help="N proxies on one store against one SQLite proxy")
    add = p.add_argument
    add("--store", required=True, help="the shared store's URL (postgresql://..., an empty "
        "database)")  # fmt: skip
    add("--replicas", type=int, default=2, help="proxies on the shared store (default 2)")
    add("--clients", type=int, default=32, help="concurrent clients (default 32)")
    add("--seconds", type=float, default=20.0, help="load per side (default 20)")
    add("--contexts", type=int, default=200, help="contexts registered, each a sleep-time "
        "job (default 200)")  # fmt: skip
    add("--settle-s", type=float, default=60.0, help="the most to wait for the queue to "
        "empty after the load (default 60)")  # fmt: skip
    add("--usage-sync-s", type=float, default=1.0, help="the replicas' usage_sync_s: how "
        "often they share keys' limits (default 1; 0: off)")  # fmt: skip
    add("--overshoot-rpm", type=int, default=0, help="measure instead how far a key with "
        "this rpm is overshot by 2 replicas (default 0: no)")  # fmt: skip
    add("--overshoot-rps", type=float, default=40.0, help="the request rate of that "
        "measurement (default 40)")  # fmt: skip
    add("--overshoot-sync", default="0,0.25,1", help="the usage_sync_s values it compares "
        "(default 0,0.25,1)")  # fmt: skip
    add("--json", action="store_true", help="print one JSON object")


def main(args: argparse.Namespace) -> int:
    if args.overshoot_rpm:
        with tempfile.TemporaryDirectory(prefix="sleeptime-overshoot-") as tmp:
            syncs = [float(value) for value in args.overshoot_sync.split(",")]
            rows = [run_overshoot(args.store, s, args, Path(tmp) / str(s)) for s in syncs]
        print(json.dumps({"overshoot": rows}, indent=2 if args.json else None))
        return 0
    with tempfile.TemporaryDirectory(prefix="sleeptime-replicas-") as tmp:
        folder = Path(tmp)
        shared = run_side(args.store, args.replicas, args, folder)
        single = run_side(f"sqlite:///{folder / 'single.sqlite'}", 1, args, folder)
    result = {"replicated": asdict(shared), "single_sqlite": asdict(single)}
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        for name, side in (("replicated", shared), ("single SQLite", single)):
            print(
                f"{name}: {side.replicas} proxies on {side.store}: {side.rps} req/s, overhead "
                f"p50 {side.overhead_ms_p50} ms / p99 {side.overhead_ms_p99} ms, jobs per "
                f"replica {side.jobs_per_replica}, {side.duplicate_jobs} duplicate jobs, "
                f"{side.lost_records} lost records, {side.errors} errors"
            )
    clean = shared.duplicate_jobs == 0 and shared.lost_records == 0 and shared.errors == 0
    return 0 if clean else 1
