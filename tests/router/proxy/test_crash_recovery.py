"""kill -9 of the proxy, again and again, in the middle of requests, record writes and
sleep-time work. After every kill the store passes its integrity check; after the last
restart every acknowledged request has its record, intact, and every sleep-time job a kill
cut short has been queued again and finished.

The proxy runs as `sleeptime serve` in a child process, in front of a fake upstream that
answers chat requests in milliseconds and sleep-time passes in a few hundred, so that most
kills land while a job is running and while records are on their way to SQLite. A request
counts as acknowledged when its client read the response whole: status 200 with an
X-Request-Id, and for a stream (a third of the requests) every event up to `data: [DONE]`
with no error event. A stream's record is journaled before its `[DONE]` leaves, so a kill
after the last byte loses nothing either.

For the README's line, run it alone:

    .venv/bin/python tests/router/proxy/test_crash_recovery.py [cycles] [--exec]
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import random
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[3]
for _path in (ROOT, ROOT / "tests" / "router", ROOT / "tests" / "router" / "proxy"):
    if str(_path) not in sys.path:  # as conftest.py does, and for a run as a script
        sys.path.insert(0, str(_path))

import crash_child  # noqa: E402
import httpx  # noqa: E402
import pytest  # noqa: E402
from fake_upstream import (  # noqa: E402
    FakeUpstream,
    Recorded,
    Reply,
    completion_body,
    json_reply,
    stream_reply,
    usage_body,
)
from fastapi.testclient import TestClient  # noqa: E402
from proxy_fakes import KEY_A, KEY_B, QUICK, SLEEP_REPLY, config_for  # noqa: E402

from router.proxy.app import create_app  # noqa: E402
from router.proxy.tenants import Tenants  # noqa: E402
from router.sleep import SYSTEM  # noqa: E402
from router.store.base import RequestRecord  # noqa: E402
from router.store.journal import RecordJournal  # noqa: E402
from router.store.sqlite import SqliteStore  # noqa: E402
from router.upstream import Forwarder  # noqa: E402

MODEL = "fake-model"
KEYS = (KEY_A, KEY_B)
DOC = "A farm has {n} hens. Each lays 2 eggs a day, and the farmer sells eggs at $0.50 each."
CLIENTS = 4  # threads sending chat requests; one more registers contexts
CHAT = {"model": MODEL, "messages": [{"role": "user", "content": "How many eggs?"}]}


@dataclass(frozen=True)
class Ack:
    """A response the client read whole: its record must be in the store."""

    key: str
    request_id: str
    context_id: str | None


@dataclass
class CrashReport:
    kills: int = 0
    kills_during_sleep: int = 0  # a sleep-time job was running when the proxy died
    cut_short: set[int] = field(default_factory=set)  # jobs a kill interrupted
    recovered: int = 0  # acknowledged records that were only in the journal at a kill
    acknowledged: list[Ack] = field(default_factory=list)
    lost: list[str] = field(default_factory=list)
    corrupted: list[str] = field(default_factory=list)
    integrity: list[str] = field(default_factory=list)
    jobs: dict[str, int] = field(default_factory=dict)  # after the last, graceful, stop
    seconds: float = 0.0

    def summary(self) -> str:
        done = self.jobs.get("done", 0)
        unfinished = sum(n for status, n in self.jobs.items() if status != "done")
        return (
            f"crash test: {self.kills} kill -9 survived ({self.kills_during_sleep} during "
            f"sleep-time work); {len(self.acknowledged)} acknowledged records checked, "
            f"{self.recovered} of them only in the journal at a kill, {len(self.lost)} lost, "
            f"{len(self.corrupted)} corrupted; integrity problems: {len(self.integrity)}; "
            f"sleep jobs: {len(self.cut_short)} cut short, {done} done, {unfinished} unfinished; "
            f"{self.seconds:.0f} s"
        )


def upstream_answer(rng: random.Random) -> Callable[[Recorded], Reply]:
    """Sleep-time passes (recognized by their system prompt) are slow, chat requests quick."""

    def answer(request: Recorded) -> Reply:
        messages = (request.json or {}).get("messages") or [{}]
        if messages[0].get("content") == SYSTEM:  # streamed: the worker stops it for users
            pieces = SLEEP_REPLY.splitlines(keepends=True)
            delay_s = rng.uniform(0.15, 0.4)
            return stream_reply(pieces, usage=usage_body(100, 40), delay_s=delay_s)
        if (request.json or {}).get("stream"):
            return stream_reply(["o", "k"], usage=usage_body(7, 3), delay_s=rng.uniform(0, 0.02))
        body = completion_body("ok", model=MODEL, usage=usage_body(7, 3))
        return json_reply(body, delay_s=rng.uniform(0.002, 0.02))

    return answer


class Proxy:
    """`sleeptime serve` as a child process on a fresh port: started, killed, restarted.

    The child is forked from a forkserver that imported the CLI once (`crash_child`), which
    keeps 21 starts within the test's time on two busy cores; `fork=False` starts each one as
    `python -m router.cli serve` instead."""

    def __init__(self, workdir: Path, upstream_url: str, *, fork: bool = True) -> None:
        self.workdir = workdir
        self.upstream_url = upstream_url
        self.db = workdir / "sleeptime.sqlite"
        self.salt = workdir / "tenant-salt"
        self.log = workdir / "proxy.log"
        self.url = ""
        self._forked = fork
        self._process: multiprocessing.process.BaseProcess | subprocess.Popen[bytes] | None = None

    def start(self, timeout_s: float = 60.0) -> Proxy:
        port = _free_port()
        self.url = f"http://127.0.0.1:{port}"
        argv = ["--port", str(port), "--upstream-url", self.upstream_url]
        argv += ["--upstream-model", MODEL, "--db", str(self.db), "--salt-file", str(self.salt)]
        argv += ["--max-inflight-for-sleep", "1000"]  # sleep-time work under load too
        self._process = self._fork(argv) if self._forked else self._popen(argv)
        self._wait_healthy(timeout_s)
        return self

    def kill(self) -> None:
        assert self._process is not None
        os.kill(self._pid(), signal.SIGKILL)
        self._wait(30)

    def stop(self) -> bool:
        """Graceful: SIGTERM, as an operator would. uvicorn raises the signal again once it
        has shut down, so a clean exit is 0 or death by that SIGTERM."""
        os.kill(self._pid(), signal.SIGTERM)
        return self._wait(60) in (0, -signal.SIGTERM)

    def _fork(self, argv: list[str]) -> multiprocessing.process.BaseProcess:
        context = multiprocessing.get_context("forkserver")
        context.set_forkserver_preload(["router.commands.serve", "crash_child"])
        process = context.Process(target=crash_child.serve, args=(argv, str(self.log)))
        process.daemon = True  # gone with the test, whatever happens to it
        process.start()
        return process

    def _popen(self, argv: list[str]) -> subprocess.Popen[bytes]:
        command = [sys.executable, "-m", "router.cli", "serve", *argv]
        env = {k: v for k, v in os.environ.items() if not k.startswith("SLEEPTIME_")}
        with self.log.open("ab") as log:
            return subprocess.Popen(command, cwd=ROOT, env=env, stdout=log, stderr=log)

    def _pid(self) -> int:
        assert self._process is not None and self._process.pid is not None
        return self._process.pid

    def _wait(self, timeout_s: float) -> int | None:
        """The exit status, negative for a signal as both kinds of child report it."""
        if isinstance(self._process, subprocess.Popen):
            return self._process.wait(timeout_s)
        assert self._process is not None
        self._process.join(timeout_s)
        return self._process.exitcode

    def _exited(self) -> bool:
        if isinstance(self._process, subprocess.Popen):
            return self._process.poll() is not None
        return self._process is not None and not self._process.is_alive()

    def log_tail(self) -> str:
        return self.log.read_text(errors="replace")[-3000:] if self.log.exists() else ""

    def _wait_healthy(self, timeout_s: float) -> None:
        assert self._process is not None
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self._exited():
                raise RuntimeError(f"the proxy exited at start:\n{self.log_tail()}")
            try:
                if httpx.get(f"{self.url}/health", timeout=1.0).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.05)
        raise RuntimeError(f"the proxy was not healthy in {timeout_s} s:\n{self.log_tail()}")


class Load:
    """Client threads: chat requests (with an explicit context by header or metadata, or
    none) from two tenants, and context registrations, until stopped."""

    def __init__(self, url: str, cycle: int, rng: random.Random) -> None:
        self.url, self.cycle = url, cycle
        self.acked: list[Ack] = []
        self._stop = threading.Event()
        self._seeds = [rng.random() for _ in range(CLIENTS)]
        self._threads = [
            threading.Thread(target=self._chat, args=(seed,), daemon=True) for seed in self._seeds
        ]
        self._threads.append(threading.Thread(target=self._register, daemon=True))

    def start(self) -> Load:
        for thread in self._threads:
            thread.start()
        return self

    def stop(self) -> list[Ack]:
        self._stop.set()
        for thread in self._threads:
            thread.join(30)
        return self.acked

    def _chat(self, seed: float) -> None:
        rng = random.Random(seed)
        with httpx.Client(base_url=self.url, timeout=10.0) as client:
            while not self._stop.is_set():
                key, context_id, request = self._request(rng)
                try:
                    request_id = self._send(client, request)
                except httpx.TransportError:  # the proxy is gone: this one was not acknowledged
                    time.sleep(0.01)
                    continue
                if request_id is not None:
                    self.acked.append(Ack(key, request_id, context_id))

    @staticmethod
    def _send(client: httpx.Client, request: dict[str, Any]) -> str | None:
        """The request id once the whole answer was read; None when it was not an answer."""
        with client.stream("POST", "/v1/chat/completions", **request) as response:
            text = response.read().decode()
        if response.status_code != 200 or "x-request-id" not in response.headers:
            return None
        if request["json"].get("stream") and (
            not text.endswith("data: [DONE]\n\n") or '"error"' in text
        ):
            return None
        return response.headers["x-request-id"]

    def _request(self, rng: random.Random) -> tuple[str, str | None, dict[str, Any]]:
        key = rng.choice(KEYS)
        headers = {"Authorization": f"Bearer {key}"}
        question = {"role": "user", "content": "How many eggs?"}
        body: dict[str, Any] = {"model": MODEL, "messages": [question]}
        if rng.random() < 1 / 3:
            body["stream"] = True
        way = rng.choice(["header", "metadata", "none"])
        context_id = None if way == "none" else f"chat-{self.cycle}"
        if context_id is not None:
            system = {"role": "system", "content": DOC.format(n=self.cycle + 10)}
            body["messages"].insert(0, system)
        if way == "header":
            headers["X-Sleeptime-Context"] = str(context_id)
        elif way == "metadata":
            body["metadata"] = {"sleeptime_context": context_id}
        return key, context_id, {"json": body, "headers": headers}

    def _register(self) -> None:
        """One new context a cycle, registered again and again: one sleep-time job."""
        body = {"id": f"reg-{self.cycle}", "context": DOC.format(n=self.cycle + 100)}
        headers = {"Authorization": f"Bearer {KEYS[0]}"}
        with httpx.Client(base_url=self.url, timeout=10.0) as client:
            while not self._stop.is_set():
                with contextlib.suppress(httpx.TransportError):
                    client.post("/v1/contexts", json=body, headers=headers)
                self._stop.wait(0.1)


def run_crash_cycles(
    workdir: Path, cycles: int = 20, *, seed: int = 1, fork: bool = True
) -> CrashReport:
    """`cycles` times: start the proxy, load it, kill -9 it at a random moment, check the
    store; then a last start that finishes the queued sleep-time work, and a graceful stop."""
    started, rng, report = time.monotonic(), random.Random(seed), CrashReport()
    with FakeUpstream(fallback=upstream_answer(random.Random(seed + 1))) as upstream:
        proxy = Proxy(workdir, upstream.url, fork=fork)
        for cycle in range(cycles):
            proxy.start()
            load = Load(proxy.url, cycle, rng).start()
            time.sleep(rng.uniform(0.3, 1.2))
            proxy.kill()
            report.acknowledged += load.stop()
            _after_kill(proxy, report)
        proxy.start()
        _wait_for_sleep_work(proxy.db)
        assert proxy.stop(), proxy.log_tail()
    _final_check(proxy, report)
    report.seconds = time.monotonic() - started
    return report


def _after_kill(proxy: Proxy, report: CrashReport) -> None:
    """Before the restart, as the crash left it: running jobs, records only in the journal."""
    report.kills += 1
    store = SqliteStore(proxy.db)  # opening recovers the WAL, as the next start will
    report.integrity += store.integrity_problems()
    store.close()
    with _read(proxy.db) as db:
        running = {row[0] for row in db.execute(_RUNNING)}
        in_store = {row[0] for row in db.execute("SELECT request_id FROM requests")}
    report.kills_during_sleep += bool(running)
    report.cut_short |= running
    report.recovered += sum(ack.request_id not in in_store for ack in report.acknowledged)


def _wait_for_sleep_work(db: Path, timeout_s: float = 60.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        with _read(db) as connection:
            left = connection.execute(_UNFINISHED).fetchone()[0]
        if left == 0:
            return
        time.sleep(0.2)


def _final_check(proxy: Proxy, report: CrashReport) -> None:
    tenants = Tenants.from_file(proxy.salt)
    store = SqliteStore(proxy.db)
    report.lost = []
    for ack in report.acknowledged:
        got = store.get_record(tenants.identify(f"Bearer {ack.key}"), ack.request_id)
        if got is None:
            report.lost.append(ack.request_id)
            continue
        fields = (got.status, got.model, got.prompt_tokens, got.completion_tokens, got.context_id)
        if fields != (200, MODEL, 7, 3, ack.context_id):
            report.corrupted.append(f"{ack.request_id}: {fields}")
    report.integrity += store.integrity_problems()
    report.jobs = store.job_counts()
    store.close()


_RUNNING = "SELECT job_id FROM sleep_jobs WHERE status = 'running'"
_UNFINISHED = "SELECT COUNT(*) FROM sleep_jobs WHERE status IN ('queued', 'running')"


class _read:
    """A connection for a `with` block that closes it (sqlite3's own `with` only commits)."""

    def __init__(self, db: Path) -> None:
        self._connection = sqlite3.connect(db, timeout=10)

    def __enter__(self) -> sqlite3.Connection:
        return self._connection

    def __exit__(self, *exc_info: object) -> None:
        self._connection.close()


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def proxy_app(tmp_path: Path, fake: FakeUpstream) -> tuple[TestClient, Forwarder]:
    forwarder = Forwarder(fake.url, retry=QUICK)
    app = create_app(config_for(tmp_path), forwarder=forwarder)
    return TestClient(app, headers={"Authorization": f"Bearer {KEY_A}"}), forwarder


def tenant_a(tmp_path: Path) -> str:
    return Tenants.from_file(config_for(tmp_path).salt_file).of_key(KEY_A)


def test_start_writes_what_a_crash_left_before_serving(tmp_path: Path, fake: FakeUpstream) -> None:
    left = RequestRecord("t1", "req-left", 1.0, "full", 200, completion_tokens=3)
    journal = RecordJournal(config_for(tmp_path).journal_dir).open()
    journal.append(left)
    journal.close()  # as a dead process's would be: unlocked, never drained
    client, forwarder = proxy_app(tmp_path, fake)
    with client:
        store = client.app.state.proxy.store  # type: ignore[attr-defined]
        assert store.get_record("t1", "req-left") == left
        client.portal.call(forwarder.aclose)


def test_a_graceful_stop_leaves_an_empty_journal(tmp_path: Path, fake: FakeUpstream) -> None:
    fake.fallback = json_reply(completion_body("ok", usage=usage_body(7, 3)))
    client, forwarder = proxy_app(tmp_path, fake)
    with client:
        ids = [client.post("/v1/chat/completions", json=CHAT).headers["x-request-id"] for _ in "ab"]
        client.portal.call(forwarder.aclose)
    store = SqliteStore(config_for(tmp_path).database)
    assert all(store.get_record(tenant_a(tmp_path), i) is not None for i in ids)
    assert list(config_for(tmp_path).journal_dir.iterdir()) == []
    store.close()


def test_a_failing_journal_falls_back_to_the_queue(tmp_path: Path, fake: FakeUpstream) -> None:
    fake.fallback = json_reply(completion_body("ok"))
    client, forwarder = proxy_app(tmp_path, fake)
    with client:
        state = client.app.state.proxy  # type: ignore[attr-defined]
        state.records.journal.close()  # every append fails from now on, as on a full disk
        request_id = client.post("/v1/chat/completions", json=CHAT).headers["x-request-id"]
        state.records.writer.flush()
        assert state.store.get_record(tenant_a(tmp_path), request_id) is not None
        assert state.records.journal.failed == 1
        client.portal.call(forwarder.aclose)


@pytest.mark.timeout(180)  # about 35 s on two cores that an LLM keeps busy
def test_kill_9_loses_no_acknowledged_record(tmp_path: Path) -> None:
    report = run_crash_cycles(tmp_path, cycles=20)
    print(report.summary())
    assert report.kills == 20 and len(report.acknowledged) > 100
    assert report.lost == [] and report.corrupted == [] and report.integrity == []
    assert set(report.jobs) == {"done"}, report.jobs  # none stuck running, none left queued
    assert report.kills_during_sleep > 0 and report.cut_short  # it did kill sleep-time work
    assert report.recovered > 0  # and records that were only in the journal


if __name__ == "__main__":
    args = [arg for arg in sys.argv[1:] if arg != "--exec"]
    with tempfile.TemporaryDirectory() as workdir:
        result = run_crash_cycles(
            Path(workdir), cycles=int(args[0]) if args else 20, fork="--exec" not in sys.argv
        )
    print(result.summary())
    sys.exit(1 if result.lost or result.corrupted or result.integrity else 0)
