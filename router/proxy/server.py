"""Running the app under uvicorn: in the foreground (`sleeptime serve`) or in a thread (tests).

uvloop and httptools are used when installed (the `serve` extra brings them):
they roughly halve the per-request cost of the event loop and HTTP parsing,
which is most of what the proxy adds to a request. Access logs are off for the
same reason; the metrics endpoint counts requests instead.

Limits on clients (`router.proxy.protocol`) come with the app (`create_app` puts them on
`app.state.client_limits`), so they hold however it is served, tests' `ServerThread`
included; uvicorn's keep-alive timeout is the idle timeout.
"""

from __future__ import annotations

import gc
import importlib.util
import resource
import threading
import time
from types import TracebackType
from typing import Any

import uvicorn

from router.proxy.protocol import ClientLimits, protocol_for


def limits_of(app: Any) -> ClientLimits:
    """What `create_app` put on the app; an app built otherwise gets the defaults."""
    return getattr(getattr(app, "state", None), "client_limits", None) or ClientLimits()


def uvicorn_config(app: Any, host: str, port: int, **options: Any) -> uvicorn.Config:
    """`http="h11"` or `"httptools"` picks the parser, the limits stay; a protocol class
    given as `http` replaces them."""
    fast_loop = importlib.util.find_spec("uvloop") is not None
    fast_http = importlib.util.find_spec("httptools") is not None
    http_impl = options.pop("http", "httptools" if fast_http else "h11")
    limits = limits_of(app)
    defaults: dict[str, Any] = {
        "loop": "uvloop" if fast_loop else "asyncio",
        "http": protocol_for(limits, http_impl) if isinstance(http_impl, str) else http_impl,
        "timeout_keep_alive": limits.idle_timeout_s,
        # h11 refuses a head past this (with a 400) only after ours has answered 431
        "h11_max_incomplete_event_size": 2 * limits.max_header_bytes,
        "access_log": False,
        "lifespan": "on",
        "log_level": "warning",
        "timeout_graceful_shutdown": 10,
        "backlog": 4096,
        # No X-Forwarded-* rewriting: nothing here reads the client's address, and the
        # layer costs every request a middleware call.
        "proxy_headers": False,
    }
    served = getattr(getattr(app, "state", None), "served", app)  # `create_app`'s entry
    return uvicorn.Config(served, host=host, port=port, **{**defaults, **options})


FILES_BESIDES_CLIENTS = 256  # the store, its journal, upstream connections, the model


def raise_file_limit(connections: int) -> int:
    """Each client connection is a file descriptor. Linux's usual soft limit, 1,024, is
    the cap's own default, so under a flood accept() failed before the cap could answer
    503 (1,100 half-sent requests: no /health until the header deadline freed them);
    the soft limit is raised toward the hard one to fit the cap. Returns the soft limit."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = connections + FILES_BESIDES_CLIENTS
    if soft < wanted:
        soft = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
    return soft


def serve(app: Any, host: str, port: int, **options: Any) -> None:
    """Blocks until SIGINT or SIGTERM, then shuts down gracefully (the app's lifespan).

    The ~100k objects that importing the app creates (modules, classes, pydantic schemas)
    live as long as the process; `gc.freeze()` takes them out of the collector's scans,
    which otherwise made every full collection a pause of tens of ms in the p99 latency."""
    raise_file_limit(limits_of(app).max_connections)
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
