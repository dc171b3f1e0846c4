"""Lifecycle of the embedded llama.cpp server: start, wait until ready, stop.

The server is a child process. It is bound to its parent three ways so that no
orphan survives: `stop()` (also on `with` exit and at interpreter exit), and the
kernel's parent-death signal, which ends the child even when the parent is
killed with SIGKILL.
"""

from __future__ import annotations

import atexit
import contextlib
import ctypes
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

from router.errors import LocalServerError
from router.model_files import ensure_model_file, model_spec
from router.settings import Settings

PR_SET_PDEATHSIG = 1


@dataclass(frozen=True)
class LocalServerConfig:
    model_path: Path
    alias: str
    threads: int = 0
    ctx: int = 8192
    parallel: int = 2
    start_timeout_s: float = 120.0
    log_dir: Path | None = None
    port: int = 0  # 0: a free port, chosen at start
    host: str = "127.0.0.1"

    @classmethod
    def from_settings(
        cls, settings: Settings, *, port: int = 0, host: str = "127.0.0.1"
    ) -> LocalServerConfig:
        spec = model_spec(settings.local_model)
        return cls(
            model_path=ensure_model_file(spec, settings.cache_dir),
            alias=spec.name,
            threads=settings.local_threads,
            ctx=settings.local_ctx,
            parallel=settings.local_parallel,
            start_timeout_s=settings.local_start_timeout_s,
            log_dir=settings.cache_dir / "logs",
            port=port,
            host=host,
        )


class LocalServer:
    """`with LocalServer(config) as server: OpenAI(base_url=server.base_url)`."""

    def __init__(self, config: LocalServerConfig) -> None:
        self.config = config
        self.port: int | None = None
        self._process: subprocess.Popen[bytes] | None = None
        self._log_path: Path | None = None

    @property
    def base_url(self) -> str:
        if self.port is None:
            raise LocalServerError("the local server is not started")
        return f"http://{self._reach}:{self.port}/v1"

    @property
    def _reach(self) -> str:
        """The address to call it on: a server on every interface answers on loopback."""
        return "127.0.0.1" if self.config.host in ("0.0.0.0", "") else self.config.host

    @property
    def model(self) -> str:
        return self.config.alias

    def start(self) -> LocalServer:
        if self._process is not None:
            return self
        self.port = self.config.port or free_port()
        if self.config.port and not _bindable(self.config.host, self.port):
            raise LocalServerError(f"port {self.port} on {self.config.host} is in use")
        self._log_path = self._open_log_path()
        with self._log_path.open("wb") as log:
            self._process = subprocess.Popen(
                self._command(),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                preexec_fn=_die_with_parent,
            )
        atexit.register(self.stop)
        try:
            self.wait_ready()
        except BaseException:
            self.stop()
            raise
        return self

    def wait_ready(self) -> None:
        deadline = time.monotonic() + self.config.start_timeout_s
        while time.monotonic() < deadline:
            exit_code = self._process.poll() if self._process else None
            if exit_code is not None:
                raise LocalServerError(
                    f"llama.cpp server exited with code {exit_code} while loading "
                    f"{self.config.model_path.name}:\n{self.log_tail()}"
                )
            if self._healthy():
                return
            time.sleep(0.1)
        raise LocalServerError(
            f"llama.cpp server not ready after {self.config.start_timeout_s:.0f} s "
            f"(model {self.config.model_path.name}):\n{self.log_tail()}"
        )

    def stop(self, timeout_s: float = 10.0) -> None:
        process, self._process = self._process, None
        atexit.unregister(self.stop)
        if process is None or process.poll() is not None:
            return
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout_s)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process else None

    def log_tail(self, lines: int = 20) -> str:
        if self._log_path is None or not self._log_path.exists():
            return "(no log)"
        text = self._log_path.read_text(errors="replace").splitlines()
        return "\n".join(text[-lines:])

    def __enter__(self) -> LocalServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def _command(self) -> list[str]:
        c = self.config
        return [
            sys.executable,
            "-m",
            "router.llama_server",
            "--model",
            str(c.model_path),
            "--port",
            str(self.port),
            "--alias",
            c.alias,
            "--ctx",
            str(c.ctx),
            "--parallel",
            str(c.parallel),
            "--threads",
            str(c.threads),
            "--host",
            c.host,
        ]

    def _open_log_path(self) -> Path:
        log_dir = self.config.log_dir or Path.cwd() / ".sleeptime" / "logs"
        log_dir.mkdir(parents=True, exist_ok=True)
        return log_dir / f"llama-{self.port}.log"

    def _healthy(self) -> bool:
        try:
            with urllib.request.urlopen(f"http://{self._reach}:{self.port}/health", timeout=1) as r:
                return json.loads(r.read()).get("status") == "ok"
        except (OSError, ValueError, urllib.error.URLError):
            return False


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _bindable(host: str, port: int) -> bool:
    """Whether nothing listens there; a port left in TIME_WAIT by the last run is free to
    llama.cpp (its HTTP server reuses addresses), so it is here too."""
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


def _die_with_parent() -> None:
    """Runs in the child before exec: the kernel sends SIGTERM when the parent dies."""
    with contextlib.suppress(OSError, AttributeError):
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
        if os.getppid() == 1:  # the parent died before prctl took effect
            os._exit(1)


def threads_line(threads: int) -> str:
    """Which thread setting the model runs with, and where to change it: under CPU contention
    llama.cpp on every core fell to about 1 token/s here, and nothing said why."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    used = f"{threads}" if threads > 0 else f"0, llama.cpp's default (one per core, {cores} here)"
    return (
        f"threads: local_threads = {used}; set local_threads or SLEEPTIME_LOCAL_THREADS "
        "lower when other work shares the CPU"
    )


def start_local_server(
    settings: Settings,
    *,
    on_status: Callable[[str], None] = print,
    port: int = 0,
    host: str = "127.0.0.1",
) -> LocalServer:
    config = LocalServerConfig.from_settings(settings, port=port, host=host)
    on_status(f"starting {config.alias} on llama.cpp ({config.model_path.name})")
    on_status(threads_line(config.threads))
    return LocalServer(config).start()
