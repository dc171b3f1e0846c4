"""The load generator of the proxy benchmarks: minimal keep-alive HTTP/1.1 clients, and the
processes they drive. A client library would spend more CPU per request than the proxy,
taken from the processes measured.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import secrets
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from router.apikeys import mint
from router.local_server import free_port
from router.store import open_store
from training.bench.fake_upstream import DELAY, content_length

# Every proxied request carries a client key, checked as in production: a master key is set
# and the keys are created in the proxy's store first, with limits that never bind.
KEYS = 4
KEY_LIMITS = {"rpm": 10**9, "tpm": 10**12}
MESSAGES = [
    {"role": "system", "content": "You are a helpful assistant. Answer in one short sentence."},
    {"role": "user", "content": "What is the capital of France?"},
]


class Client:
    """One keep-alive connection sending one request at a time, as one user of an SDK does."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer

    @classmethod
    async def open(cls, port: int) -> Client:
        return cls(*await asyncio.open_connection("127.0.0.1", port))

    async def send(self, request: bytes) -> tuple[float, float]:
        """(latency, the part of it the upstream spent on purpose), in seconds."""
        started = time.perf_counter()
        self.writer.write(request)
        head = await self.reader.readuntil(b"\r\n\r\n")
        body = await self.reader.readexactly(content_length(head))
        latency = time.perf_counter() - started
        if not head.startswith(b"HTTP/1.1 200"):
            raise RuntimeError(f"bench request failed: {head.splitlines()[0]!r}")
        delay = DELAY.search(body)
        return latency, int(delay.group(1)) / 1e6 if delay else 0.0


def chat_request(port: int, messages: list[dict] = MESSAGES, key: str = "sk-bench") -> bytes:
    """One keep-alive HTTP/1.1 chat request, as bytes the load generator sends as they are."""
    body = json.dumps({"model": "bench", "messages": messages, "max_tokens": 16}).encode()
    head = (
        f"POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
        f"Authorization: Bearer {key}\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    )
    return head.encode() + body


@dataclass
class Samples:
    latencies: list[float]
    net: list[float]  # latency minus the upstream's chosen delay
    wall_s: float = 0.0
    cpu_s: float = 0.0  # the proxy process's CPU time during these rounds


@contextlib.contextmanager
def run_process(
    command: list[str], log: Path, ready_url: str, env: dict[str, str] | None = None
) -> Iterator[subprocess.Popen[bytes]]:
    with log.open("wb") as out:
        process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, env=env)
    try:
        _wait_ready(process, ready_url, log)
        yield process
    finally:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _wait_ready(process: subprocess.Popen[bytes], url: str, log: Path) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{url} exited early:\n{log.read_text()[-2000:]}")
        with contextlib.suppress(OSError), urllib.request.urlopen(url, timeout=1):
            return
        time.sleep(0.1)
    raise RuntimeError(f"{url} not ready after 60 s:\n{log.read_text()[-2000:]}")


def commands(folder: Path, upstream: int, proxy: int, upstream_ms: float) -> list[list[str]]:
    python, url = sys.executable, f"http://127.0.0.1:{upstream}/v1"
    fake = f"-m training.bench.fake_upstream --port {upstream} --delay-ms {upstream_ms}"
    serve = f"-m router.commands.serve --port {proxy} --upstream-url {url} --upstream-model bench"
    files = ["--db", str(folder / "bench.sqlite"), "--salt-file", str(folder / "salt")]
    return [[python, *fake.split()], [python, *serve.split(), *files]]


@dataclass(frozen=True)
class Processes:
    upstream_port: int
    proxy_port: int
    proxy_pid: int
    keys: tuple[str, ...]  # client keys the proxy knows
    master_key: str  # for /metrics


def client_keys(store_url: str | Path, count: int = KEYS) -> tuple[str, ...]:
    """As `sleeptime keys create` makes them, in the store the proxies will open; names
    never taken yet, so a bench can run again on the same store."""
    store = open_store(store_url)
    try:
        run = secrets.token_hex(3)
        made = [mint(f"bench-{i}-{run}", **KEY_LIMITS) for i in range(count)]
        for _, record in made:
            store.create_key(record)
    finally:
        store.close()
    return tuple(key for key, _ in made)


def metric_total(port: int, master_key: str, name: str) -> float:
    """The sum of a metric's samples on one proxy's /metrics, which the master key reads."""
    headers = {"Authorization": f"Bearer {master_key}"}
    request = urllib.request.Request(f"http://127.0.0.1:{port}/metrics", headers=headers)
    with urllib.request.urlopen(request, timeout=10) as response:
        lines = response.read().decode().splitlines()
    return sum(
        float(line.split()[-1]) for line in lines if line.startswith((name + "{", name + " "))
    )


@contextlib.contextmanager
def proxy_before_upstream(upstream_ms: float, prefix: str) -> Iterator[Processes]:
    """The fake upstream and the real proxy (`sleeptime serve`, its store in a temporary
    folder) in front of it, each its own process, both ready; stopped on exit."""
    upstream_port, proxy_port = free_port(), free_port()
    with tempfile.TemporaryDirectory(prefix=prefix) as tmp:
        folder = Path(tmp)
        upstream, proxy = commands(folder, upstream_port, proxy_port, upstream_ms)
        keys, master = client_keys(folder / "bench.sqlite"), "sk-" + secrets.token_urlsafe(32)
        env = {**os.environ, "SLEEPTIME_MASTER_KEY": master}
        up_ready = f"http://127.0.0.1:{upstream_port}/v1/models"
        proxy_ready = f"http://127.0.0.1:{proxy_port}/health"
        with (
            run_process(upstream, folder / "upstream.log", up_ready),
            run_process(proxy, folder / "proxy.log", proxy_ready, env) as process,
        ):
            yield Processes(upstream_port, proxy_port, process.pid, keys, master)
