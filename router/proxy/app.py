"""`create_app(config)`: the OpenAI-compatible proxy as a FastAPI app.

Nothing starts when the app is built. The lifespan (uvicorn's startup and
shutdown, or a TestClient's `with`) starts, in order, the embedded model when
no upstream URL is set, the upstream client, the store, the record writer and
the sleep-time worker, and stops them in reverse: the worker first, then the
writer (which flushes every queued record), the store, and the model last.

Injected parts (`forwarder`, `store`, `router`, `sleep_backend`) belong to the
caller, who closes them; the app closes only what it built.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

from anyio import to_thread
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import Response
from starlette.exceptions import HTTPException

from router.errors import ConfigError
from router.local_server import start_local_server
from router.proxy import admin, endpoints, openapi, passthrough
from router.proxy.api_errors import ApiError
from router.proxy.bodies import BodyRules
from router.proxy.config import ProxyConfig
from router.proxy.formats.adapter import FormatAdapter
from router.proxy.formats.chat import ChatFormat
from router.proxy.gate import Gate, cors_origins
from router.proxy.model_routes import ModelList, build_model_list
from router.proxy.pipeline import Pipeline
from router.proxy.protocol import ClientLimits
from router.proxy.routing import ROUTERS, Router
from router.proxy.sleep_spend import charge_sleep, within_budget
from router.proxy.state import ProxyState
from router.proxy.tenants import Tenants
from router.settings import Settings
from router.sleep import ChatBackend, SleepBudget
from router.store import open_store
from router.store.base import SleepJob, Store
from router.store.journal import RecordJournal
from router.upstream import Forwarder, OpenAIBackend, RetryPolicy
from router.worker import SleepBudgetFn, SleepUsage, SleepWorker, fixed_budget_of

log = logging.getLogger("sleeptime.proxy")
# The routed endpoints: a path and its format adapter, each served by the shared pipeline.
ROUTED: dict[str, type[FormatAdapter[Any]]] = {
    "/v1/chat/completions": ChatFormat,
}
CORS_METHODS = ["GET", "POST", "DELETE"]
# FastAPI's built-in OpenTelemetry costs about 50 us a request; /metrics covers what it would.
NO_TELEMETRY: Any = {"tracing": False, "metrics": False, "logs": False, "operation_spans": False}


@dataclass(frozen=True)
class Parts:
    """What a caller may inject instead of letting the lifespan build it."""

    forwarder: Forwarder | None = None
    store: Store | None = None
    router: Router | None = None
    sleep_backend: ChatBackend | None = None
    budget: SleepBudgetFn | None = None


def create_app(
    config: ProxyConfig | Settings,
    *,
    forwarder: Forwarder | None = None,
    store: Store | None = None,
    router: Router | None = None,
    sleep_backend: ChatBackend | None = None,
    budget: SleepBudgetFn | None = None,
) -> FastAPI:
    if isinstance(config, Settings):
        config = ProxyConfig.from_settings(config)
    parts = Parts(forwarder, store, router, sleep_backend, budget)

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with contextlib.AsyncExitStack() as stack:
            app.state.proxy = await _start(config, parts, stack)
            yield

    app = FastAPI(title="sleeptime", version="0.1.0", lifespan=lifespan, telemetry=NO_TELEMETRY)
    # Read by the server (`router.proxy.server`) and by every body reader (`bodies`).
    app.state.client_limits = ClientLimits.from_settings(config.settings)
    app.state.bodies = BodyRules.from_settings(config.settings)
    routed = {path: Pipeline(adapter()) for path, adapter in ROUTED.items()}
    _add_routes(app, routed)
    app.add_middleware(RoutedFastPath, routed=routed)
    app.add_middleware(Gate)  # outside the fast path: no request reaches a route unchecked
    origins = cors_origins(config.settings.cors_origins)
    if origins:  # outside the gate: a preflight carries no key
        app.add_middleware(
            CORSMiddleware, allow_origins=origins, allow_methods=CORS_METHODS, allow_headers=["*"]
        )
    _add_error_handlers(app)
    openapi.document(app)
    # What a server runs (`router.proxy.server`): with CORS, every request needs its layer.
    app.state.served = app if origins else ServedEntry(app, routed)
    return app


class ServedEntry:
    """The ASGI app uvicorn serves: a routed POST goes to the gate and its pipeline at once,
    past FastAPI's and Starlette's layers (an await each, and a wrapper around every `send`),
    which it needs none of; everything else, lifespan included, goes to the app. An error
    the pipeline did not turn into a response is answered as Starlette's outermost layer
    would: the 500 of `internal_error`."""

    def __init__(self, app: FastAPI, routed: dict[str, Pipeline]) -> None:
        self.app = app
        self.state = app.state
        self._fast = Gate(RoutedFastPath(app, routed))
        self._routed = routed

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if (
            scope["type"] != "http"
            or scope["method"] != "POST"
            or scope["path"] not in self._routed
        ):
            await self.app(scope, receive, send)
            return
        scope["app"] = self.app
        try:
            await self._fast(scope, receive, send)
        except Exception:
            log.exception("unhandled error in POST %s", scope["path"])
            with contextlib.suppress(Exception):  # a response already begun cannot be replaced
                await internal_error().response()(scope, receive, send)


class RoutedFastPath:
    """POST to a routed path straight to its pipeline, past Starlette's exception
    middleware, FastAPI's exit stack and route matching, which the pipeline needs none of
    (it turns its own errors into responses). Starlette's outermost middleware still
    answers anything it raises with the 500 of `internal_error`."""

    def __init__(self, app: Any, routed: dict[str, Pipeline]) -> None:
        self.app = app
        self.routed = routed

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http" and scope["method"] == "POST":
            pipeline = self.routed.get(scope["path"])
            if pipeline is not None:
                response = await pipeline.handle(Request(scope, receive))
                await response(scope, receive, send)
                return
        await self.app(scope, receive, send)


def _add_routes(app: FastAPI, routed: dict[str, Pipeline]) -> None:
    # Plain Starlette routes for the hot path: no dependency solving per request.
    for path, pipeline in routed.items():
        app.router.add_route(path, pipeline.handle, methods=["POST"])
    app.add_api_route("/v1/models", endpoints.models, methods=["GET"])
    app.add_api_route("/v1/contexts", endpoints.register_context, methods=["POST"])
    app.add_api_route("/v1/contexts/{context_id}", endpoints.get_context, methods=["GET"])
    app.add_api_route("/v1/feedback", endpoints.feedback, methods=["POST"])
    app.router.add_route("/v1/embeddings", passthrough.embeddings, methods=["POST"])
    app.router.add_route("/v1/responses", passthrough.responses, methods=["POST"])
    app.add_api_route("/health", endpoints.health, methods=["GET"])
    app.add_api_route("/health/ready", endpoints.ready, methods=["GET"])
    app.add_api_route("/metrics", endpoints.metrics, methods=["GET"])
    admin.add_routes(app)


def _add_error_handlers(app: FastAPI) -> None:
    async def api_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, ApiError)
        return exc.response()

    async def http_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)
        code = "not_found" if exc.status_code == 404 else None
        return ApiError(exc.status_code, str(exc.detail), code=code).response()

    async def validation_error(request: Request, exc: Exception) -> Response:
        return ApiError(400, f"invalid request: {exc}", code="invalid_value").response()

    async def internal(request: Request, exc: Exception) -> Response:
        log.exception("unhandled error in %s %s", request.method, request.url.path)
        return internal_error().response()

    app.add_exception_handler(ApiError, api_error)
    app.add_exception_handler(HTTPException, http_error)
    app.add_exception_handler(RequestValidationError, validation_error)
    app.add_exception_handler(Exception, internal)


def internal_error() -> ApiError:
    return ApiError(
        500, "internal error in the sleeptime proxy", type="server_error", code="internal_error"
    )


async def _start(config: ProxyConfig, parts: Parts, stack: contextlib.AsyncExitStack) -> ProxyState:
    forwarder, model, models = await _upstream(config, parts, stack)
    store = parts.store
    if store is None:
        store = open_store(config.store_url, lease_s=config.settings.sleep_lease_s)
        stack.callback(store.close)
    store.requeue_running()
    journal = RecordJournal(config.journal_dir)
    await to_thread.run_sync(journal.recover, store)  # before serving: what a crash left
    if parts.router is None and config.router not in ROUTERS:
        known = ", ".join(sorted(ROUTERS))
        raise ConfigError(f"unknown router {config.router!r}; one of {known}, or serve --policy")
    router = parts.router or ROUTERS[config.router]()
    tenants = Tenants.from_file(config.salt_file)
    state = ProxyState(
        config,
        forwarder,
        store,
        router,
        tenants,
        upstream_model=model,
        journal=journal.open(),
        models=models,
    )
    state.records.writer.start()
    if state.usage_sync is not None:
        state.usage_sync.start()
    stack.callback(state.close)
    stack.callback(state.contexts.watch())  # another replica's context changes, as they commit
    if config.sleep_enabled:
        await _start_worker(config, parts, state, stack)
    return state


async def _upstream(
    config: ProxyConfig, parts: Parts, stack: contextlib.AsyncExitStack
) -> tuple[Forwarder, str, ModelList | None]:
    """The default upstream and its model; with a [[model]] list, the list's models on their
    upstreams (one Forwarder per distinct URL and key), and the list's default instead."""
    settings, entries = config.settings, config.settings.model_list
    default, model = await _default_upstream(config, parts, stack)
    if not entries:
        assert default is not None
        return default, model, None
    if config.models:
        raise ConfigError("set the models clients may use in the [[model]] list or in `models`")
    models = build_model_list(
        entries,
        default,
        lambda url, key: _forwarder(config, url, key, stack),
        default_key=settings.upstream_key,
    )
    return models.upstream, await models.upstream_model(), models


async def _default_upstream(
    config: ProxyConfig, parts: Parts, stack: contextlib.AsyncExitStack
) -> tuple[Forwarder | None, str]:
    """Injected, else the flat settings' upstream, else the embedded model; None when a model
    list names an upstream for every model."""
    settings = config.settings
    if parts.forwarder is not None:
        return parts.forwarder, settings.upstream_model
    if settings.model_list and all(entry.upstream_url for entry in settings.model_list):
        return None, ""
    base_url, model = settings.upstream_url, settings.upstream_model
    if settings.uses_local_model:
        server = await to_thread.run_sync(lambda: start_local_server(settings, on_status=log.info))
        stack.callback(server.stop)
        base_url, model = server.base_url, server.model
    return _forwarder(config, base_url, settings.upstream_key, stack), model


def _forwarder(
    config: ProxyConfig, base_url: str, key: str, stack: contextlib.AsyncExitStack
) -> Forwarder:
    settings = config.settings
    forwarder = Forwarder(
        base_url,
        key or None,
        timeout_s=settings.upstream_timeout_s,
        retry=RetryPolicy(max_retries=settings.upstream_max_retries),
        max_connections=config.max_connections,
    )
    stack.push_async_callback(forwarder.aclose)
    return forwarder


async def _start_worker(
    config: ProxyConfig, parts: Parts, state: ProxyState, stack: contextlib.AsyncExitStack
) -> None:
    backend = parts.sleep_backend
    if backend is None:
        settings = config.settings
        retry = RetryPolicy(max_retries=settings.upstream_max_retries)
        built = OpenAIBackend(
            state.forwarder.base_url,
            state.models.upstream_key or None,
            timeout_s=settings.upstream_timeout_s,
            retry=retry,
        )
        stack.callback(built.close)
        backend = built
    base = SleepBudget(
        passes=config.sleep_passes,
        max_tokens=config.sleep_max_tokens,
        prompt=config.sleep_prompt,
        adaptive=config.settings.sleep_adaptive,
        reask=config.settings.sleep_reask,
    )
    # A policy router sets each context's sleep budget; the other routers run the configured.
    plan = getattr(state.router, "sleep_budget", None)
    passes_after_probe = getattr(state.router, "passes_after_probe", None)
    budget = parts.budget or (plan(base) if plan is not None else fixed_budget_of(base))
    budget = within_budget(state, budget)  # a key over its budget starts no sleep-time job

    def finished(job: SleepJob, outcome: str, usage: SleepUsage) -> None:
        state.contexts.forget(job.tenant, job.context_id)
        state.metrics.sleep_jobs.labels(outcome).inc()
        state.metrics.sleep_tokens.inc(usage.completion_tokens)
        charge_sleep(state, job.tenant, usage)

    worker = SleepWorker(
        state.store,
        backend,
        state.models.upstream_model,
        is_idle=state.inflight.is_idle,
        budget=budget,
        passes_after_probe=passes_after_probe,
        renew_every_s=config.settings.sleep_lease_s / 3,
        on_finished=finished,
    )
    state.attach(worker)
    worker.start()
    stack.push_async_callback(worker.stop)
