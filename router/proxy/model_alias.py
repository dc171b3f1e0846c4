"""Which model a request names upstream, with one upstream: "sleeptime" (or none) is an alias.

A client may leave the model to sleeptime ("sleeptime", or no model): that means the
configured upstream model, else the first the upstream lists (asked once). Other names
go through when `models` allows them (any, when it is empty: the upstream decides);
with the embedded model only its own name does, since llama.cpp answers any name with
itself and a client would never learn it asked for another model.

With a `[[model]]` list in the settings, `router.proxy.model_routes.ModelList` answers
the same questions instead; both give a `fallback.Route`.
"""

from __future__ import annotations

from typing import Any, Protocol

from policies.cost import ModelPrice, price_of
from router.errors import UpstreamError
from router.proxy.api_errors import ApiError
from router.proxy.fallback import Route, Step
from router.proxy.readiness import Readiness

ALIAS = "sleeptime"
MAX_ROUTES = 64


class Lister(Protocol):
    async def models(self) -> list[str]: ...

    async def get(self, path: str, *, deadline: float | None = None) -> object: ...


class ModelAlias:
    def __init__(
        self,
        upstream: Lister,
        *,
        configured: str = "",
        allowed: tuple[str, ...] = (),
        local: bool,
        prices: dict[str, ModelPrice] | None = None,
        upstream_key: str = "",
    ) -> None:
        self.upstream = upstream
        self.allowed = allowed
        self.local = local
        self.prices = prices or {}
        self.upstream_key = upstream_key  # the sleep-time worker's, for the same upstream
        self.readiness = Readiness([(getattr(upstream, "base_url", "upstream"), self._probe)])
        self._model = configured
        self._routes: dict[tuple[str, bool], Route] = {}

    async def _probe(self, deadline: float) -> object:
        """Readiness: GET /models, its retries bounded by the probe's deadline."""
        return await self.upstream.get("/models", deadline=deadline)

    def listing(self) -> dict[str, Any] | None:
        """None: /v1/models passes the upstream's own list through."""
        return None

    def price_of(self, model: str) -> ModelPrice | None:
        """Dollars per million tokens of an upstream model; None: counted in tokens only."""
        return price_of(self.prices, model)

    async def upstream_model(self) -> str:
        """What the alias means; LookupError when the upstream lists no models."""
        if not self._model:
            models = await self.upstream.models()
            if not models:
                raise LookupError("the upstream lists no models: set upstream_model")
            self._model = models[0]
        return self._model

    async def resolve(self, requested: Any) -> Route:
        """The model to name upstream (and whether it replaces the client's), or an ApiError."""
        try:
            if not requested or requested == ALIAS:
                return self._route(await self.upstream_model(), True)
            if await self._accepts(requested):
                return self._route(requested, False)
        except (UpstreamError, LookupError) as exc:
            message = f"cannot resolve the upstream model for 'sleeptime': {exc}"
            raise ApiError(
                502, message, type="upstream_error", code="upstream_model_unknown"
            ) from None
        message = f"The model '{requested}' does not exist or you do not have access to it."
        raise ApiError(404, message, param="model", code="model_not_found")

    @property
    def default_name(self) -> str:
        """The default model's name in records and prices (once resolved; else empty)."""
        return self._model

    def _route(self, model: str, replaced: bool) -> Route:
        """Kept for the few names a proxy sees; a client inventing names gets fresh ones."""
        route = self._routes.get((model, replaced))
        if route is None:
            route = Route((Step(model, model, self.upstream),), replaced)
            if len(self._routes) < MAX_ROUTES:
                self._routes[model, replaced] = route
        return route

    async def _accepts(self, model: str) -> bool:
        if self.allowed:
            return model in self.allowed
        if self.local:
            return model == await self.upstream_model()
        return True
