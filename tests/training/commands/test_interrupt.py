"""Ctrl-C stops the LLM commands within seconds and keeps what they finished.

In-process with a fake backend (the thread pool's own logic), then as the real process a
user interrupts, in front of the fake upstream of the benchmarks (a real socket that
answers in a set time), for `collect` and `bench replay`.
"""

from __future__ import annotations

import json
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from router.local_server import free_port
from router.upstream import ChatResult, Usage
from training.commands.collect import CollectPlan, run_collection
from training.commands.logprob import LOGPROBS, LogprobRow, score_folder
from training.datasets import Query, StatefulProblem
from training.outcomes import CONTEXTS, read_rows, write_jsonl
from training.threads import Stopped, run_all

REPO = Path(__file__).resolve().parents[3]
PLAN = CollectPlan(sleep_budgets=(1,), rungs_raw=(0, 1, 3), rungs_learned=(0, 1))


def _default_sigint() -> None:
    """A job started in the background by a non-interactive shell (`cmd &`, as some CI runners
    do) inherits SIGINT ignored; a terminal's Ctrl-C is what these tests mean."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


@pytest.fixture(autouse=True)
def ctrl_c_raises() -> Iterator[None]:
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    yield
    signal.signal(signal.SIGINT, previous)


def problems(n: int) -> list[StatefulProblem]:
    return [
        StatefulProblem(f"c{i}", f"{i} apples.", (Query(f"c{i}/q0", "How many?", str(i)),), "t")
        for i in range(n)
    ]


class SlowModel:
    """Each call takes `delay_s`; the `interrupt_at`-th call sends SIGINT to the main thread."""

    def __init__(self, delay_s: float, interrupt_at: int) -> None:
        self.delay_s, self.interrupt_at = delay_s, interrupt_at
        self.calls, self.after_interrupt = 0, 0
        self._lock = threading.Lock()

    def chat(self, messages: list[dict], *, model: str, **params: object) -> ChatResult:
        with self._lock:
            self.calls += 1
            self.after_interrupt += self.calls > self.interrupt_at
            if self.calls == self.interrupt_at:
                signal.pthread_kill(threading.main_thread().ident, signal.SIGINT)
        time.sleep(self.delay_s)
        return ChatResult("Answer: 1", "stop", Usage(10, 3), self.delay_s, model)


def test_ctrl_c_in_collect_drops_the_queued_contexts(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    model = SlowModel(delay_s=0.05, interrupt_at=5)
    started = time.monotonic()
    with pytest.raises(KeyboardInterrupt):
        run_collection(model, "m", "d", problems(40), PLAN, tmp_path / "out", progress=False)
    assert time.monotonic() - started < 3.0
    assert model.after_interrupt <= 2  # the calls already in flight on the 2 threads, no more
    assert model.calls < 40 * PLAN.calls_per_query()
    assert "stopped after 0 of 40 contexts" in capsys.readouterr().err


def test_an_item_that_fails_stops_the_others() -> None:
    stop, seen = threading.Event(), []

    def work(item: int) -> int:
        if item == 0:
            raise ValueError("no")
        time.sleep(0.01)
        if stop.is_set():
            raise Stopped
        seen.append(item)
        return item

    with pytest.raises(ValueError):
        run_all(work, range(200), workers=2, stop=stop)
    assert stop.is_set() and len(seen) < 20


def test_logprob_keeps_what_it_scored_when_stopped(tmp_path: Path) -> None:
    write_jsonl(tmp_path / CONTEXTS, [
        {"id": f"c{i}", "context": "c", "queries": [{"id": f"c{i}/q0", "question": "q"}]}
        for i in range(10)
    ])  # fmt: skip

    class Scorer:
        calls = 0

        def score(self, context: str, question: str) -> object:
            self.calls += 1
            if self.calls == 5:
                raise KeyboardInterrupt
            return type("Scored", (), {"tokens": 1, "total": -1.0, "mean": -1.0})()

    with pytest.raises(KeyboardInterrupt):
        score_folder(tmp_path, Scorer(), progress=False)  # type: ignore[arg-type]
    assert len(read_rows(tmp_path / LOGPROBS, LogprobRow)) == 4


# The real process, Ctrl-C as a terminal sends it.


@pytest.fixture
def upstream() -> Iterator[str]:
    port = free_port()
    command = [sys.executable, "-m", "training.bench.fake_upstream", "--port", str(port),
               "--delay-ms", "200"]  # fmt: skip
    process = subprocess.Popen(command, cwd=REPO)
    try:
        _wait_for(lambda: _listening(port), 20)
        yield f"http://127.0.0.1:{port}/v1"
    finally:
        process.kill()
        process.wait()


def _listening(port: int) -> bool:
    import socket

    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0


def _wait_for(condition: Callable[[], bool], timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def _rows(path: Path, table: str = "responses") -> int:
    if not path.exists():
        return 0
    try:
        with sqlite3.connect(path) as db:
            return int(db.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0])
    except sqlite3.OperationalError:
        return 0


def _interrupt(command: list[str], ready: Callable[[], bool]) -> tuple[int, float, str]:
    """Runs `command`, sends SIGINT once `ready()`, returns (exit code, seconds to exit, err)."""
    pipe = subprocess.PIPE
    process = subprocess.Popen(command, cwd=REPO, preexec_fn=_default_sigint,
                               stdout=pipe, stderr=pipe, text=True)  # fmt: skip
    try:
        _wait_for(lambda: ready() or process.poll() is not None, 90)
        assert process.poll() is None, process.communicate()
        process.send_signal(signal.SIGINT)
        sent = time.monotonic()
        _, err = process.communicate(timeout=30)
        return process.returncode, time.monotonic() - sent, err
    finally:
        process.kill()


def test_collect_stops_in_seconds_and_resumes_from_what_it_got(
    tmp_path: Path, upstream: str
) -> None:
    data = tmp_path / "d.jsonl"
    data.write_text("".join(
        json.dumps({"id": f"c{i}", "context": f"There are {i} apples.",
                    "queries": [{"question": "How many apples?", "answer": i}]}) + "\n"
        for i in range(40)
    ))  # fmt: skip
    cache = tmp_path / "cache.sqlite"
    command = [sys.executable, "-m", "router.cli", "collect", "--dataset", str(data),
               "--limit", "0", "--upstream-url", upstream, "--cache", str(cache),
               "--out", str(tmp_path / "out"), "--json"]  # fmt: skip
    code, seconds, err = _interrupt(command, lambda: _rows(cache) >= 6)
    assert code == 130, err
    assert seconds < 5.0
    assert "stopped after" in err and "Traceback" not in err
    kept = _rows(cache)
    assert kept >= 6
    assert kept < 40 * PLAN.calls_per_query()


def test_bench_replay_stops_in_seconds_and_keeps_its_answers(
    tmp_path: Path, upstream: str
) -> None:
    policy = REPO / "benchmarks" / "policies" / "gsm8k-multi-learned.json"
    out = tmp_path / "replay.json"
    command = [sys.executable, "-m", "router.cli", "bench", "replay", "--policy", str(policy),
               "--offset", "50", "--limit", "40", "--upstream-url", upstream,
               "--out", str(out), "--json"]  # fmt: skip
    asked = out.with_suffix(".work") / "pass-through.asked.jsonl"
    lines = lambda: len(asked.read_text().splitlines()) if asked.exists() else 0  # noqa: E731
    code, seconds, err = _interrupt(command, lambda: lines() >= 4)
    assert code == 130, err
    assert seconds < 5.0
    assert "stopped after" in err and "Traceback" not in err
    assert lines() >= 4
