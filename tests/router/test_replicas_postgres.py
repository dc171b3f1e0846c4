"""Two `sleeptime serve` processes on one PostgreSQL database, as replicas behind a load
balancer: a context registered through one is served learned by the other; a replica
killed (-9) in the middle of a sleep-time job leaves it to the other once its lease ran
out; over repeated cycles no acknowledged record is lost and no job is done twice."""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fake_upstream import (
    FakeUpstream,
    Recorded,
    Reply,
    completion,
    json_reply,
    stream_reply,
    usage_body,
)
from pg_server import PgServer

from router.apikeys import mint
from router.local_server import free_port
from router.store import open_store

pytestmark = pytest.mark.timeout(240)
MASTER = "sk-master-replicas-test"
LEASE_S = 5.0  # renewed every third while the job runs; a killed replica's claim ends within it
NOTES = "NOTES:\n- Eggs sold: 16 - 3 - 4 = 9\nQUESTIONS:\nQ: How many eggs are sold?\nA: 9"


class Upstream:
    """Answers chat at once; a sleep-time pass (a stream) hangs while `hold` is set, as a
    long pass on a slow model does, and counts the passes it finished per context."""

    def __init__(self) -> None:
        self.hold = threading.Event()
        self.finished: Counter[str] = Counter()

    def __call__(self, request: Recorded) -> Reply:
        if request.method == "GET":
            return json_reply({"object": "list", "data": [{"id": "fake", "object": "model"}]})
        asked = request.json
        if not asked.get("stream"):
            return completion("16 - 3 - 4 = 9\nAnswer: 9", usage=usage_body(10, 5))
        if self.hold.is_set():
            return stream_reply([NOTES], usage=usage_body(100, 20), delay_s=60)
        named = re.search(r"Report \d+", json.dumps(asked["messages"]))
        self.finished[named.group(0) if named else "other"] += 1
        return stream_reply([NOTES], usage=usage_body(100, 20))


class Replica:
    """One `sleeptime serve` process; its cache folder (and record journal) is its own."""

    def __init__(self, name: str, url: str, upstream: str, folder: Path) -> None:
        self.port = free_port()
        self.folder = folder / name
        self.folder.mkdir(exist_ok=True)
        command = [sys.executable, "-m", "router.commands.serve", "--port", str(self.port)]
        command += ["--store", url, "--upstream-url", upstream, "--upstream-model", "fake"]
        command += ["--salt-file", str(folder / "salt"), "--router", "enriched"]
        env = {
            **os.environ,
            "SLEEPTIME_MASTER_KEY": MASTER,
            "SLEEPTIME_SLEEP_LEASE_S": str(LEASE_S),
            "XDG_CACHE_HOME": str(self.folder),
        }
        log = (self.folder / "log").open("ab")
        self.process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=env)
        deadline = time.monotonic() + 60
        while not self._answers():
            assert self.process.poll() is None, (self.folder / "log").read_text()[-2000:]
            assert time.monotonic() < deadline, "the replica did not start"
            time.sleep(0.1)

    def _answers(self) -> bool:
        with contextlib.suppress(OSError):
            urllib.request.urlopen(f"http://127.0.0.1:{self.port}/health", timeout=1).close()
            return True
        return False

    def call(self, method: str, path: str, key: str, body: Any = None) -> tuple[dict, dict]:
        data = json.dumps(body).encode() if body is not None else None
        headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}
        if path.endswith("/chat/completions"):
            headers["X-Sleeptime-Context"] = body.pop("context_name")
            data = json.dumps(body).encode()
        request = urllib.request.Request(
            f"http://127.0.0.1:{self.port}{path}", data=data, headers=headers, method=method
        )
        with urllib.request.urlopen(request, timeout=30) as response:
            return json.loads(response.read()), {k.lower(): v for k, v in response.headers.items()}

    def kill(self) -> None:
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(10)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            self.process.wait(30)


@pytest.fixture
def cluster(pg: PgServer, tmp_path: Path) -> Iterator[tuple[str, str, Upstream, Any]]:
    """(store URL, a client key, the upstream, start(name) -> a running Replica)."""
    url = pg.create_database()
    store = open_store(url)
    key, record = mint("alice")
    store.create_key(record)
    store.close()
    upstream = Upstream()
    started: list[Replica] = []
    with FakeUpstream(fallback=upstream) as fake:

        def start(name: str) -> Replica:
            replica = Replica(name, url, fake.url, tmp_path)
            started.append(replica)
            return replica

        try:
            yield url, key, upstream, start
        finally:
            for replica in started:
                replica.stop()


def wait_status(replica: Replica, key: str, context: str, status: str, timeout_s: float) -> dict:
    deadline = time.monotonic() + timeout_s
    while True:
        view, _ = replica.call("GET", f"/v1/contexts/{context}", key)
        if view["status"] == status or time.monotonic() > deadline:
            assert view["status"] == status, view
            return view
        time.sleep(0.1)


def chat(replica: Replica, key: str, context: str) -> tuple[str, str]:
    """(request id, route) of one question on `context`."""
    body = {
        "model": "sleeptime",
        "messages": [{"role": "user", "content": "How many eggs are sold?"}],
        "context_name": context,
    }
    _, headers = replica.call("POST", "/v1/chat/completions", key, body)
    return headers["x-request-id"], headers["x-sleeptime-route"]


def test_a_context_registered_through_one_replica_is_served_learned_by_the_other(
    cluster: tuple[str, str, Upstream, Any],
) -> None:
    _, key, _, start = cluster
    one, other = start("one"), start("other")
    one.call("POST", "/v1/contexts", key, {"id": "ducks", "context": "Janet's ducks lay 16."})
    wait_status(other, key, "ducks", "done", 30)
    _, route = chat(other, key, "ducks")
    assert route == "enriched"
    with pytest.raises(urllib.error.HTTPError) as refused:  # and only for its own tenant
        other.call("GET", "/v1/contexts/ducks", "sk-made-up")
    assert refused.value.code == 401


def test_a_replica_killed_mid_job_leaves_it_to_the_other_and_nothing_is_lost(
    cluster: tuple[str, str, Upstream, Any],
) -> None:
    url, key, upstream, start = cluster
    a = start("a")
    acknowledged: list[str] = []
    for cycle in range(3):
        context = f"doc-{cycle}"
        upstream.hold.set()  # a's pass will hang: a is killed in the middle of it
        a.call("POST", "/v1/contexts", key, {"id": context, "context": f"Report {cycle}: 16 eggs."})
        wait_status(a, key, context, "running", 30)
        b = start("b")  # after a's claim, so the job is a's (b may take it once the lease ran out)
        acknowledged += [chat(a, key, context)[0] for _ in range(5)]  # journaled, maybe unwritten
        a.kill()
        upstream.hold.clear()
        view = wait_status(b, key, context, "done", LEASE_S + 30)  # b takes the job over
        assert view["learned_context"] and view["version"] == 1
        acknowledged += [chat(b, key, context)[0] for _ in range(5)]
        b.stop()
        a = start("a")  # on the killed one's folder: its journal is replayed at start
    a.stop()
    store = open_store(url)
    try:
        tenant = store.list_keys()[0].tenant
        missing = [rid for rid in acknowledged if store.get_record(tenant, rid) is None]
        counts = store.job_counts()
    finally:
        store.close()
    assert missing == []
    assert counts.get("done") == 3 and not counts.get("running") and not counts.get("queued")
    # Each job's pass finished once: by b, after a was killed in the middle of it.
    assert upstream.finished == {f"Report {cycle}": 1 for cycle in range(3)}
