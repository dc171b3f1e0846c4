"""`sleeptime serve` and `sleeptime bench proxy`: flags, lifecycle, graceful shutdown."""

from __future__ import annotations

import json
import signal
import sqlite3
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

import pytest
from fake_upstream import FakeUpstream, completion, usage_body
from fastapi.testclient import TestClient

from router import cli
from router.commands import serve as serve_cmd
from router.local_server import free_port
from router.proxy import app as app_module
from router.proxy.config import ProxyConfig
from router.settings import Settings
from training.bench import cli as bench_cli
from training.bench import overhead as bench_proxy

REPO = Path(__file__).resolve().parents[3]


def test_flags_reach_the_config(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    seen: dict[str, Any] = {}

    def fake_serve(app: Any, host: str, port: int, **options: Any) -> None:
        seen.update(app=app, host=host, port=port, **options)

    captured: list[ProxyConfig] = []
    monkeypatch.setattr(serve_cmd, "serve", fake_serve)
    monkeypatch.setattr(
        serve_cmd, "create_app", lambda config, **parts: captured.append(config) or "app"
    )
    monkeypatch.setenv("SLEEPTIME_UPSTREAM_KEY", "up-key-from-env")
    argv = [
        "--upstream-url",
        "http://u/v1",
        "--port",
        "9123",
        "--db",
        str(tmp_path / "x.sqlite"),
        "--router",
        "enriched",
        "--max-inflight-for-sleep",
        "2",
        "--sleep-passes",
        "3",
        "--no-sleep",
        "--max-body-bytes",
        "1000",
    ]
    assert serve_cmd.main(argv) == 0
    config = captured[0]
    assert (seen["host"], seen["port"], seen["app"]) == ("127.0.0.1", 9123, "app")
    assert config.settings.upstream_url == "http://u/v1"
    assert config.settings.upstream_key == "up-key-from-env"
    assert (config.router, config.max_inflight_for_sleep, config.sleep_passes) == ("enriched", 2, 3)
    assert (config.sleep_enabled, config.max_body_bytes) == (False, 1000)
    assert config.database == tmp_path / "x.sqlite"


def test_master_key_flag_reaches_the_settings(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    captured: list[ProxyConfig] = []
    monkeypatch.setattr(serve_cmd, "serve", lambda app, host, port, **options: None)
    monkeypatch.setattr(
        serve_cmd, "create_app", lambda config, **parts: captured.append(config) or "app"
    )
    argv = ["--upstream-url", "http://u/v1", "--db", str(tmp_path / "x.sqlite")]
    assert serve_cmd.main([*argv, "--master-key", "sk-m", "--host", "0.0.0.0"]) == 0
    assert captured[0].settings.master_key == "sk-m"


@pytest.mark.parametrize("host", ["0.0.0.0", "192.168.1.10", "::", "example.com"])
def test_local_mode_refuses_to_listen_beyond_loopback(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], host: str
) -> None:
    monkeypatch.delenv("SLEEPTIME_MASTER_KEY", raising=False)
    monkeypatch.setattr(serve_cmd, "create_app", lambda *a, **k: pytest.fail("started"))
    assert cli.main(["serve", "--upstream-url", "http://u/v1", "--host", host]) == 1
    error = capsys.readouterr().err.strip()
    assert len(error.splitlines()) == 1 and "SLEEPTIME_MASTER_KEY" in error


@pytest.mark.parametrize("host", ["127.0.0.1", "127.0.0.2", "::1", "localhost"])
def test_local_mode_listens_on_loopback(host: str) -> None:
    serve_cmd.check_exposure(host, "")  # no error


def test_defaults_live_in_the_cache_dir(tmp_path: Path) -> None:
    config = ProxyConfig.from_settings(Settings(cache_dir=tmp_path), router=None)
    assert config.database == tmp_path / "sleeptime.sqlite"
    assert config.salt_file == tmp_path / "tenant-salt"
    assert config.router == "passthrough" and config.max_inflight_for_sleep == 0


def test_embedded_model_starts_and_stops_with_the_app(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, fake: FakeUpstream
) -> None:
    events: list[str] = []

    class Embedded:
        base_url, model = fake.url, "embedded-small"

        def stop(self) -> None:
            events.append("stopped")

    def start(settings: Settings, on_status: Any = print) -> Embedded:
        events.append(f"started {settings.local_model}")
        return Embedded()

    monkeypatch.setattr(app_module, "start_local_server", start)
    settings = Settings(cache_dir=tmp_path, local_model="qwen2.5-coder-0.5b", sleep_enabled=False)
    app = app_module.create_app(ProxyConfig(settings))
    with TestClient(app, headers={"Authorization": "Bearer sk-any"}) as client:  # no upstream
        assert events == ["started qwen2.5-coder-0.5b"]
        fake.enqueue(completion("hi"))
        client.post(
            "/v1/chat/completions",
            json={"model": "sleeptime", "messages": [{"role": "user", "content": "x"}]},
        )
        assert fake.requests[0].json["model"] == "embedded-small"
    assert events[-1] == "stopped"


def test_sigterm_flushes_records(tmp_path: Path, fake: FakeUpstream) -> None:
    port, db = free_port(), tmp_path / "s.sqlite"
    command = [
        sys.executable,
        "-m",
        "router.commands.serve",
        "--port",
        str(port),
        "--upstream-url",
        fake.url,
        "--upstream-model",
        "m",
        "--db",
        str(db),
        "--salt-file",
        str(tmp_path / "salt"),
    ]
    process = subprocess.Popen(command, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        _wait_healthy(port)
        fake.enqueue(*[completion("hi", usage=usage_body(3, 1))] * 5)
        for _ in range(5):
            _post(port, {"model": "m", "messages": [{"role": "user", "content": "x"}]})
        process.send_signal(signal.SIGTERM)
        # uvicorn shuts down gracefully, then re-raises the signal it caught: -15 is expected.
        assert process.wait(30) in (0, -signal.SIGTERM)
    finally:
        process.kill()
    with sqlite3.connect(db) as store:
        assert store.execute(
            "SELECT COUNT(*), SUM(completion_tokens) FROM requests"
        ).fetchone() == (5, 5)
        assert store.execute("PRAGMA integrity_check").fetchone() == ("ok",)


def test_bench_summary_reads_the_32_client_level() -> None:
    side = bench_proxy.Side(1.0, 2.0, 100.0, 10, 0.5, 1.0)
    slower = bench_proxy.Side(2.0, 9.0, 90.0, 10, 1.5, 8.0)
    levels = [bench_proxy.Level(c, side, slower, 300.0) for c in (1, 8, 32)]
    result = bench_proxy.summary(levels, 50.0)
    assert (result["overhead_ms_p50"], result["overhead_ms_p99"], result["at_concurrency"]) == (
        1.0,
        7.0,
        32,
    )
    assert result["meets_target"] is True and len(result["levels"]) == 3  # type: ignore[arg-type]


def test_bench_runs_end_to_end(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(REPO)
    argv = [
        "proxy",
        "--requests",
        "40",
        "--rounds",
        "2",
        "--concurrency",
        "1,4",
        "--upstream-ms",
        "1",
        "--json",
    ]
    assert bench_cli.main(argv) == 0
    result = json.loads(capsys.readouterr().out)
    assert {"overhead_ms_p50", "overhead_ms_p99"} <= set(result) and result["at_concurrency"] == 4
    assert result["lockstep"] is False  # clients start spread out unless told
    assert [level["proxy"]["requests"] for level in result["levels"]] == [40, 40]


def _wait_healthy(port: int) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=1):
                return
        except OSError:
            time.sleep(0.1)
    raise AssertionError("the proxy did not start")


def _post(port: int, body: dict) -> dict:
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/v1/chat/completions",
        json.dumps(body).encode(),
        {"Content-Type": "application/json", "Authorization": "Bearer sk-any"},
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.loads(response.read())
