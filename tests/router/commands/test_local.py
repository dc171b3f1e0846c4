"""`sleeptime local --port`: the port asked for, the thread setting named, Ctrl-C stops it.

A stand-in for the llama.cpp process (a bare HTTP server answering /health on the port it
is given), so this runs without loading a model; the real one is in test_local_server.py.
"""

from __future__ import annotations

import json
import socket
import sys
import textwrap
import urllib.request
from pathlib import Path
from types import SimpleNamespace

import pytest

from router import local_server
from router.commands import local as local_cmd
from router.errors import LocalServerError
from router.local_server import LocalServer, LocalServerConfig, free_port

STAND_IN = textwrap.dedent("""
    import http.server, sys
    class Health(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            body = b'{"status": "ok"}'
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
        def log_message(self, *args):
            pass
    http.server.HTTPServer((sys.argv[2], int(sys.argv[1])), Health).serve_forever()
""")


@pytest.fixture
def stand_in(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> list[list[str]]:
    commands: list[list[str]] = []

    def command(self: LocalServer) -> list[str]:
        commands.append([sys.executable, "-c", STAND_IN, str(self.port), self.config.host])
        return commands[-1]

    monkeypatch.setattr(LocalServer, "_command", command)
    monkeypatch.setattr(local_server, "ensure_model_file", lambda spec, cache: tmp_path / "m.gguf")
    monkeypatch.setenv("SLEEPTIME_CACHE_DIR", str(tmp_path))
    monkeypatch.setenv("SLEEPTIME_LOCAL_THREADS", "3")
    return commands


def test_local_serves_on_the_port_asked_and_names_its_threads(
    stand_in: list[list[str]],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    port = free_port()
    health: list[dict] = []

    class CtrlC:
        """Where `local` waits for Ctrl-C: ask the server on its port, then press it."""

        def wait(self) -> None:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=5) as r:
                health.append(json.loads(r.read()))
            raise KeyboardInterrupt

    monkeypatch.setattr(local_cmd, "threading", SimpleNamespace(Event=CtrlC))
    with pytest.raises(KeyboardInterrupt):
        local_cmd.main(["--port", str(port)])
    assert health == [{"status": "ok"}]
    out = capsys.readouterr().out
    assert f"OpenAI API at http://127.0.0.1:{port}/v1" in out
    assert "threads: local_threads = 3;" in out and "SLEEPTIME_LOCAL_THREADS" in out
    with socket.socket() as sock:  # stopped on the way out: nothing answers there now
        assert sock.connect_ex(("127.0.0.1", port)) != 0


def test_a_port_in_use_is_one_clear_error(stand_in: list[list[str]], tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        config = LocalServerConfig(tmp_path / "m.gguf", "m", port=port, log_dir=tmp_path)
        with pytest.raises(LocalServerError, match=f"port {port} on 127.0.0.1 is in use"):
            LocalServer(config).start()
    assert stand_in == []  # refused before any process started


def test_the_default_is_llama_cpps_own_thread_count() -> None:
    line = local_server.threads_line(0)
    assert line.startswith("threads: local_threads = 0, llama.cpp's default")
    assert "SLEEPTIME_LOCAL_THREADS" in line


@pytest.mark.parametrize("port", ["-1", "70000", "x"])
def test_a_port_out_of_range_is_a_usage_error(port: str) -> None:
    with pytest.raises(SystemExit) as exit_info:
        local_cmd.main(["--port", port])
    assert exit_info.value.code == 2
