"""The proxy's aggregates in MLflow: every N seconds, from a thread of its own.

`sleeptime serve` starts one `ProxyMetrics`. Each tick reads the proxy's store through
the thread's own SQLite connection, takes what reached the store since the previous tick
(the window), adds it to the running total since the exporter started (so a tick costs
one window, however long the proxy has run), and logs both as metrics of one MLflow run
per proxy process (experiment "sleeptime-proxy"), step = window index. Windows
are bounded by store marks (`router.store.base.Mark`), so a record is counted exactly once
however late the background writer delivered it.

Off the request path: requests never wait on the thread. It only reads (WAL readers never
block the writer) and its SQL runs inside SQLite, which releases the GIL; its Python work
shares the GIL with the event loop, which gets it back every 5 ms (the switch interval).
The MLflow run is opened at the first tick, not at start: importing mlflow (seconds of CPU)
neither delays the start nor happens in a proxy stopped before then, which leaves no run
(its records are in the store, for `sleeptime export`). Never a crash: a tick that fails
is logged and the next one covers its window too; the thread is a daemon, and `stop`
flushes one last window once a tick has run.

Privacy: params are an allowlist of settings (never the upstream key, an URL's user, password
or query); tenants appear only as a count, never as hashes.
"""

from __future__ import annotations

import logging
import re
import threading
import urllib.parse
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, Protocol

from router.proxy.config import ProxyConfig
from router.store.base import Aggregates, Mark, StoreReader

EXPERIMENT = "sleeptime-proxy"
ROUTES = ("full", "enriched", "cached")  # logged even at zero, so charts have no gaps
STATUS_CLASSES = ("2xx", "4xx", "5xx")
log = logging.getLogger("sleeptime.proxy.metrics")


class Sink(Protocol):
    def log(self, metrics: Mapping[str, float | None], step: int) -> None: ...

    def close(self) -> None: ...


class MlflowSink:
    """Opens its run at the first window it logs and ends it at `close`."""

    def __init__(
        self, uri: str, params: Mapping[str, Any], *, name: str, experiment: str = EXPERIMENT
    ) -> None:
        self.uri, self.params, self.name, self.experiment = uri, dict(params), name, experiment
        self.run_id: str | None = None
        self._run: Any = None

    def log(self, metrics: Mapping[str, float | None], step: int) -> None:
        if self._run is None:
            from training.tracking import ClientRun

            tags = {"sleeptime.kind": "proxy"}
            self._run = ClientRun(
                self.uri, self.experiment, self.name, params=self.params, tags=tags
            )
            self.run_id = self._run.run_id
        self._run.log_metrics(metrics, step)

    def close(self) -> None:
        if self._run is not None:
            self._run.end()


class ProxyMetrics:
    """The thread, and `tick`: one window, public so that tests drive it without a clock."""

    def __init__(
        self, open_store: Callable[[], StoreReader], sink: Sink, *, every_s: float = 60.0
    ) -> None:
        self.sink = sink
        self.every_s = every_s
        self.windows = 0  # windows logged: the next one's step
        self.failures = 0
        self._open_store = open_store
        self._store: StoreReader | None = None
        self._last: Mark | None = None
        self._total = Aggregates()  # the windows logged so far, summed
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._run, name="sleeptime-metrics", daemon=True)

    def start(self) -> ProxyMetrics:
        self._thread.start()
        return self

    def stop(self, timeout_s: float = 30.0) -> None:
        """Idempotent. Waits for the last window; a stuck MLflow costs `timeout_s` at most."""
        self._stopping.set()
        if self._thread.is_alive():
            self._thread.join(timeout_s)
            if self._thread.is_alive():
                log.warning("proxy metrics: the last window was not logged in %s s", timeout_s)

    def tick(self) -> bool:
        """One window; False when the store or the sink failed (the next tick retries)."""
        try:
            store, last = self._opened()
            end = store.mark()
            window = store.aggregates(last, end)
            total = self._total.plus(window)
            self.sink.log(metrics_of(window, total), self.windows)
        except Exception as exc:  # the traceback once: MLflow down for an hour is 60 lines
            self.failures += 1
            first = self.failures == 1
            log.warning("proxy metrics: window %d failed: %r", self.windows, exc, exc_info=first)
            return False
        self._last, self._total, self.windows = end, total, self.windows + 1
        return True

    def _run(self) -> None:
        try:
            self._opened()  # now, so that the first window starts when the proxy does
        except Exception:
            log.warning("proxy metrics: the store did not open; the next tick retries")
        while not self._stopping.wait(self.every_s):
            self.tick()
        if self.windows or self.failures:  # a run exists (or was tried): the last window
            self.tick()
        self._close()

    def _opened(self) -> tuple[StoreReader, Mark]:
        if self._store is None:
            self._store = self._open_store()
        if self._last is None:
            self._last = self._store.mark()
        return self._store, self._last

    def _close(self) -> None:
        closers = [self.sink.close] + ([self._store.close] if self._store is not None else [])
        for close in closers:
            try:
                close()
            except Exception:
                log.warning("proxy metrics: closing failed", exc_info=True)


def metrics_of(window: Aggregates, total: Aggregates) -> dict[str, float | None]:
    """`window/...` since the previous tick, `total/...` since the exporter started (its
    sums only: tenant counts and latency percentiles are per window)."""
    totals = {k: v for k, v in _scoped(total, "total").items() if k not in PER_WINDOW_ONLY}
    return {**_scoped(window, "window"), **totals}


PER_WINDOW_ONLY = frozenset({"total/tenants", "total/latency_p50_ms", "total/latency_p95_ms"})


def _scoped(figures: Aggregates, scope: str) -> dict[str, float | None]:
    out: dict[str, float | None] = {
        "requests": figures.requests,
        "tenants": figures.tenants,
        "error_rate": figures.error_rate,
        "prompt_tokens": figures.prompt_tokens,
        "completion_tokens": figures.completion_tokens,
        "cached_tokens": figures.cached_tokens,
        "cost": figures.cost,
        "latency_p50_ms": figures.latency_p50_ms,
        "latency_p95_ms": figures.latency_p95_ms,
        "feedback": figures.feedback,
        "accuracy": figures.accuracy,
        "sleep_jobs_done": figures.sleep_done,
        "sleep_jobs_failed": figures.sleep_failed,
        "sleep_tokens": figures.sleep_tokens,
    }
    for route in sorted({*ROUTES, *figures.by_route}):
        out[f"route/{_key(route)}"] = figures.by_route.get(route, 0)
    for status in sorted({*STATUS_CLASSES, *figures.by_status}):
        out[f"status/{_key(status)}"] = figures.by_status.get(status, 0)
    for route, (labels, correct) in sorted(figures.feedback_by_route.items()):
        out[f"feedback/{_key(route)}"] = labels
        out[f"accuracy/{_key(route)}"] = correct / labels
    return {f"{scope}/{name}": value for name, value in out.items()}


def _key(text: str) -> str:
    """Route names come from our routers; this keeps any other text a valid metric name."""
    return re.sub(r"[^0-9A-Za-z_.-]", "_", text)[:64] or "_"


def proxy_params(
    config: ProxyConfig, *, every_s: float, policy: Path | None = None
) -> dict[str, Any]:
    """An allowlist: a setting added later (a key, a list of clients) stays out of MLflow
    until someone names it here."""
    settings = config.settings
    upstream = settings.upstream_url
    return {
        "upstream": safe_url(upstream) if upstream else f"embedded {settings.local_model}",
        "upstream_model": settings.upstream_model or "(the upstream's first)",
        "listen": f"{settings.host}:{settings.port}",
        "router": "policy" if policy else config.router,
        "policy": str(policy) if policy else "none",
        "sleep_enabled": config.sleep_enabled,
        "sleep_passes": config.sleep_passes,
        "sleep_max_tokens": config.sleep_max_tokens,
        "max_inflight_for_sleep": config.max_inflight_for_sleep,
        "max_inflight_per_key": config.max_inflight_per_key,
        "max_body_bytes": config.max_body_bytes,
        "max_context_bytes": config.max_context_bytes,
        "models": ",".join(config.models) or "any",
        "test_token_price_ratio": settings.test_token_price_ratio,
        "store": str(config.database),
        "mlflow_every_s": every_s,
    }


def safe_url(url: str) -> str:
    """Scheme, host, port and path: a URL's user, password and query can carry a key."""
    try:
        parts = urllib.parse.urlsplit(url)
        host = f"[{parts.hostname}]" if ":" in (parts.hostname or "") else parts.hostname or ""
        port = f":{parts.port}" if parts.port else ""
    except ValueError:
        return "(not a valid URL)"
    return f"{parts.scheme}://{host}{port}{parts.path}"
