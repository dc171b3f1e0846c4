"""`sleeptime aggregate`: the proxy's aggregates, read from its store, into MLflow.

An offline job beside any number of proxies, never inside one: it opens the store by
its URL (`--store`, or the proxy's settings), and every `--every-s` seconds takes what
reached the store since the previous tick (the window), adds it to the running total
since the job started (so a tick costs one window, however long the proxy has run), and
logs both as metrics of one MLflow run (experiment "sleeptime-proxy"), step = window
index. Windows are bounded by store marks (`router.store.base.Mark`), so a record is
counted exactly once however late a proxy's background writer delivered it. `--once`
logs one window over everything the store holds and ends.

It only reads: WAL readers never block a proxy's writer. Never a crash: a tick that
fails is logged and the next one covers its window too; SIGINT or SIGTERM logs one last
window and ends the run.

Privacy: params are an allowlist (never a key, an URL's user, password or query);
tenants appear only as a count, never as hashes.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import re
import signal
import sys
import threading
from collections.abc import Callable, Iterator, Mapping
from typing import Any, Protocol

from router.settings import load_settings, safe_url
from router.store import open_store, sqlite_path, store_url_of
from router.store.base import Aggregates, Mark, StoreError, StoreReader

EXPERIMENT = "sleeptime-proxy"
BEGINNING = Mark(0, 0, 0.0)
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


class AggregateJob:
    """The thread, and `tick`: one window, public so that tests drive it without a clock."""

    def __init__(
        self,
        open_store: Callable[[], StoreReader],
        sink: Sink,
        *,
        every_s: float = 60.0,
        start: Mark | None = None,  # None: when the store opens; BEGINNING: all it holds
    ) -> None:
        self.sink = sink
        self.every_s = every_s
        self.windows = 0  # windows logged: the next one's step
        self.failures = 0
        self._open_store = open_store
        self._store: StoreReader | None = None
        self._last: Mark | None = start
        self._total = Aggregates()  # the windows logged so far, summed
        self.stopping = threading.Event()
        self._thread = threading.Thread(target=self._run, name="sleeptime-metrics", daemon=True)

    def start(self) -> AggregateJob:
        self._thread.start()
        return self

    def stop(self, timeout_s: float = 30.0) -> None:
        """Idempotent. Waits for the last window; a stuck MLflow costs `timeout_s` at most."""
        self.stopping.set()
        if self._thread.is_alive():
            self._thread.join(timeout_s)
            if self._thread.is_alive():
                log.warning("proxy metrics: the last window was not logged in %s s", timeout_s)

    def wait(self) -> None:
        """Until the thread has logged its last window (after `stopping` is set)."""
        while self._thread.is_alive():
            self._thread.join(0.5)

    def close(self) -> None:
        """For a job driven by `tick` alone, without the thread."""
        self._close()

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
        while not self.stopping.wait(self.every_s):
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
        "spend_usd": figures.spend_usd,  # requests, from the model list's prices
        "sleep_spend_usd": figures.sleep_spend_usd,
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


def job_params(store_url: str, *, every_s: float) -> dict[str, Any]:
    """An allowlist: a setting added later (a key, a list of clients) stays out of MLflow
    until someone names it here."""
    return {"store": safe_url(store_url), "every_s": every_s}


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="sleeptime aggregate", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)  # fmt: skip
    p.add_argument("--config", help="a TOML settings file")
    p.add_argument("--store", help="the proxies' store URL (default: the settings' store, "
                   "sqlite:///<cache_dir>/sleeptime.sqlite)")  # fmt: skip
    p.add_argument("--every-s", type=float, default=60.0, help="seconds per window (default 60)")
    p.add_argument("--once", action="store_true", help="one window over the whole store, then end")
    p.add_argument("--mlflow-uri", help="MLflow tracking URI (default: the mlflow_uri setting)")
    p.add_argument("--name", default="proxy aggregates",
                   help="the MLflow run's name (default: proxy aggregates)")  # fmt: skip
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    settings = load_settings(args.config)
    url = args.store or store_url_of(settings)
    db = sqlite_path(url)
    if db is not None and not db.is_file():  # opening would create an empty store, then log it
        raise StoreError(f"no proxy store at {db}: pass --store, or run `sleeptime serve` first")
    uri = args.mlflow_uri or settings.mlflow_uri
    sink = MlflowSink(uri, job_params(url, every_s=args.every_s), name=args.name)
    if args.once:
        job = AggregateJob(lambda: open_store(url), sink, start=BEGINNING)
        logged = job.tick()
        job.close()
        print(f"{'logged' if logged else 'failed'}: {safe_url(url)} -> MLflow {safe_url(uri)}")
        return 0 if logged else 1
    job = AggregateJob(lambda: open_store(url), sink, every_s=args.every_s)
    print(f"aggregates of {safe_url(url)} every {args.every_s:g} s -> MLflow {safe_url(uri)}")
    with _on_signals(job.stopping.set):
        job.start().wait()
    return 0


@contextlib.contextmanager
def _on_signals(stop: Callable[[], None]) -> Iterator[None]:
    """SIGINT and SIGTERM end the loop; the thread then logs the last window. A handler that
    raised instead could interrupt `Thread.join`, after which Python may think the thread
    done and exit with the run never ended (seen here)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    wanted = (signal.SIGINT, signal.SIGTERM)
    previous = {s: signal.signal(s, lambda signum, frame: stop()) for s in wanted}
    try:
        yield
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)


if __name__ == "__main__":
    sys.exit(main())
