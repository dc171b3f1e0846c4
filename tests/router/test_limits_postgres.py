"""Per-key limits across two `sleeptime serve` processes on one PostgreSQL database: a
key's requests per minute hold across both (within the bound docs/deployment.md gives),
and a budget spent through one replica is refused by the other within a sync interval."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import openai
import pytest
from fake_upstream import FakeUpstream, Recorded, Reply, completion, usage_body
from pg_server import PgServer

from router.apikeys import mint
from router.local_server import free_port
from router.store import open_store

pytestmark = pytest.mark.timeout(60)
MASTER = "sk-master-limits-test"
SYNC_S = 0.25
RPM = 20
PACE_S = 0.04  # one request every 40 ms, alternately: each replica 12.5 a second
# $1.50 a request: 10 prompt and 5 completion tokens at $100,000 per million.
SETTINGS = """
[[model]]
name = "fake"
aliases = ["sleeptime"]
upstream_url = "{upstream}"
input = 100000.0
output = 100000.0
"""


def answer(request: Recorded) -> Reply:
    return completion("9", usage=usage_body(10, 5))


class Serve:
    def __init__(self, name: str, url: str, folder: Path) -> None:
        self.port = free_port()
        home = folder / name
        home.mkdir()
        command = [sys.executable, "-m", "router.commands.serve", "--port", str(self.port)]
        command += ["--store", url]
        env = {
            **os.environ,
            "SLEEPTIME_CONFIG": str(folder / "settings.toml"),
            "SLEEPTIME_MASTER_KEY": MASTER,
            "SLEEPTIME_USAGE_SYNC_S": str(SYNC_S),
            "SLEEPTIME_SLEEP_ENABLED": "false",
            "XDG_CACHE_HOME": str(home),
        }
        self.log = home / "log"
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=env)
        deadline = time.monotonic() + 30
        while not self._up():
            assert self.process.poll() is None, self.log.read_text()[-2000:]
            assert time.monotonic() < deadline, "the replica did not start"
            time.sleep(0.1)

    def _up(self) -> bool:
        with contextlib.suppress(OSError):
            urllib.request.urlopen(f"http://127.0.0.1:{self.port}/health", timeout=1).close()
            return True
        return False

    def client(self, key: str) -> openai.OpenAI:
        return openai.OpenAI(
            base_url=f"http://127.0.0.1:{self.port}/v1", api_key=key, max_retries=0, timeout=10
        )

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(15)


@pytest.fixture
def replicas(pg: PgServer, tmp_path: Path) -> Iterator[tuple[Serve, Serve, str]]:
    """Two replicas and the store URL; the keys are created by each test."""
    url = pg.create_database()
    open_store(url).close()  # migrated once, before both start
    with FakeUpstream(fallback=answer) as fake:
        (tmp_path / "settings.toml").write_text(SETTINGS.format(upstream=fake.url))
        started: list[Serve] = []
        try:
            started += [Serve("a", url, tmp_path), Serve("b", url, tmp_path)]
            yield started[0], started[1], url
        finally:
            for replica in started:
                replica.stop()


def create_key(url: str, name: str, **limits: object) -> str:
    key, record = mint(name, **limits)  # type: ignore[arg-type]
    store = open_store(url)
    store.create_key(record)
    store.close()
    return key


def ask(client: openai.OpenAI) -> int:
    """The status of one chat request."""
    try:
        client.chat.completions.create(
            model="sleeptime", messages=[{"role": "user", "content": "How many?"}]
        )
    except openai.APIStatusError as error:
        return error.status_code
    return 200


def test_a_keys_rpm_holds_across_two_replicas(replicas: tuple[Serve, Serve, str]) -> None:
    a, b, url = replicas
    key = create_key(url, "paced", rpm=RPM)
    clients = [a.client(key), b.client(key)]
    statuses = []
    for i in range(3 * RPM):
        statuses.append(ask(clients[i % 2]))
        time.sleep(PACE_S)
    admitted = statuses.count(200)
    # Each replica alone would admit RPM, 2 * RPM in all. Shared: RPM, plus what the other
    # replica admitted before this one pulled it (at most two intervals, its push and our
    # pull), at its pace, plus the request in flight.
    bound = RPM + int(2 * SYNC_S / (2 * PACE_S)) + 2
    assert RPM <= admitted <= bound, statuses
    assert set(statuses) == {200, 429}
    time.sleep(3 * SYNC_S)
    assert [ask(client) for client in clients] == [429, 429]  # both refuse once it is spent


def test_a_budget_spent_through_one_replica_is_refused_by_the_other(
    replicas: tuple[Serve, Serve, str],
) -> None:
    a, b, url = replicas
    key = create_key(url, "budgeted", budget_usd=1.0)
    b.client(key).models.list()  # free, but b now follows the key's spend
    assert ask(a.client(key)) == 200  # $1.50 through a: over the budget
    spent = time.monotonic()
    # b spent nothing itself: only a's spend, synced through the store, can refuse it.
    while True:
        try:
            b.client(key).models.list()
        except openai.RateLimitError as refused:
            assert "budget" in str(refused)
            break
        assert time.monotonic() - spent < 4 * SYNC_S + 1, "b never learned of a's spend"
        time.sleep(0.02)
    assert ask(b.client(key)) == 429
    assert ask(a.client(key)) == 429
