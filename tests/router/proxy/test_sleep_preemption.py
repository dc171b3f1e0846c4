"""User requests preempt sleep-time work on the same upstream, over real HTTP.

The upstream serves one request at a time (a local model with its slots taken) and
streams the sleep-time call slowly. A user request that arrives mid-pass cuts the pass
(the proxy closes the sleep stream, which frees the slot) and is answered at once; the
pass runs again once the proxy is idle and the job completes. Before, the user waited
for the whole pass (one request took 211 s against 0.6 s with sleep off).
"""

from __future__ import annotations

import time
from pathlib import Path

import httpx
from slow_upstreams import AUTH, OneSlotUpstream, start_proxy

from router.proxy.server import ServerThread

DOC = "Janet's ducks lay 16 eggs per day. She eats 3 for breakfast and bakes with 4."
EVENTS, INTERVAL_S = 60, 0.05  # a sleep-time pass takes 3 s on this upstream
MARGIN_S = 1.0  # a loaded machine's scheduling


def ask(server: ServerThread) -> tuple[httpx.Response, float]:
    messages = [{"role": "system", "content": DOC}, {"role": "user", "content": "Eggs left?"}]
    started = time.monotonic()
    response = httpx.post(
        f"{server.url}/chat/completions",
        json={"model": "m", "messages": messages},
        headers=AUTH,
        timeout=30,
    )
    return response, time.monotonic() - started


def status_of(server: ServerThread, context_id: str) -> str | None:
    view = httpx.get(f"{server.url}/contexts/{context_id}", headers=AUTH, timeout=5).json()
    return view.get("status")


def wait_until(check: object, timeout_s: float = 15.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not check():  # type: ignore[operator]
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)


def test_a_user_request_preempts_a_running_pass_which_resumes_later(tmp_path: Path) -> None:
    with (
        OneSlotUpstream(events=EVENTS, interval_s=INTERVAL_S) as upstream,
        start_proxy(tmp_path, upstream.url, sleep_enabled=True, upstream_timeout_s=30) as server,
    ):
        idle, idle_s = ask(server)  # no sleep-time work yet: the upstream's own speed
        assert idle.status_code == 200
        registered = httpx.post(
            f"{server.url}/contexts", json={"id": "doc", "context": DOC}, headers=AUTH
        )
        assert registered.status_code in (200, 201, 202), registered.text
        wait_until(upstream.streaming.is_set)  # the pass holds the upstream's one slot
        time.sleep(0.3)
        busy, busy_s = ask(server)
        assert busy.status_code == 200
        assert busy_s < INTERVAL_S * EVENTS / 2, f"the user waited {busy_s:.2f} s"
        wait_until(lambda: status_of(server, "doc") == "done")
        worker = server.app.state.proxy.worker  # type: ignore[attr-defined]
        assert (upstream.streams_cut, upstream.streams_finished, worker.preempted) == (1, 1, 1)
        assert upstream.answers == 2
    print(f"user latency: idle {idle_s * 1000:.0f} ms, during a pass {busy_s * 1000:.0f} ms")
