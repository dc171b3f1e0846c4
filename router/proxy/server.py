"""Running the app under uvicorn: in the foreground (`sleeptime serve`) or in a thread (tests).

uvloop and httptools are used when installed (the `serve` extra brings them):
they roughly halve the per-request cost of the event loop and HTTP parsing,
which is most of what the proxy adds to a request. Access logs are off for the
same reason; the metrics endpoint counts requests instead.
"""

from __future__ import annotations

import gc
import importlib.util
import threading
import time
from types import TracebackType
from typing import Any

import uvicorn


def uvicorn_config(app: Any, host: str, port: int, **options: Any) -> uvicorn.Config:
    fast_loop = importlib.util.find_spec("uvloop") is not None
    fast_http = importlib.util.find_spec("httptools") is not None
    defaults: dict[str, Any] = {
        "loop": "uvloop" if fast_loop else "asyncio",
        "http": "httptools" if fast_http else "h11",
        "access_log": False,
        "lifespan": "on",
        "log_level": "warning",
        "timeout_graceful_shutdown": 10,
        "backlog": 4096,
    }
    return uvicorn.Config(app, host=host, port=port, **{**defaults, **options})


def serve(app: Any, host: str, port: int, **options: Any) -> None:
    """Blocks until SIGINT or SIGTERM, then shuts down gracefully (the app's lifespan).

    The ~100k objects that importing the app creates (modules, classes, pydantic schemas)
    live as long as the process; `gc.freeze()` takes them out of the collector's scans,
    which otherwise made every full collection a pause of tens of ms in the p99 latency."""
    server = uvicorn.Server(uvicorn_config(app, host, port, **options))
    gc.collect()
    gc.freeze()
    server.run()


class ServerThread:
    """`with ServerThread(app, port) as server: server.url` — a real HTTP server for tests."""

    def __init__(self, app: Any, port: int, host: str = "127.0.0.1", **options: Any) -> None:
        self.host, self.port = host, port
        self.server = uvicorn.Server(uvicorn_config(app, host, port, **options))
        self._thread = threading.Thread(target=self.server.run, name="sleeptime-proxy")

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}/v1"

    def start(self, timeout_s: float = 60.0) -> ServerThread:
        self._thread.start()
        deadline = time.monotonic() + timeout_s
        while not self.server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the proxy did not start (see the log above)")
            time.sleep(0.01)
        return self

    def stop(self) -> None:
        self.server.should_exit = True
        self._thread.join(timeout=30)

    def __enter__(self) -> ServerThread:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
