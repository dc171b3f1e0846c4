"""Which model a request names upstream: "sleeptime" (or none) is an alias.

A client may leave the model to sleeptime ("sleeptime", or no model): that means the
configured upstream model, else the first the upstream lists (asked once). Other names
go through when `models` allows them (any, when it is empty: the upstream decides);
with the embedded model only its own name does, since llama.cpp answers any name with
itself and a client would never learn it asked for another model.
"""

from __future__ import annotations

from typing import Any, Protocol

from policies.cost import ModelPrice, price_of
from router.errors import UpstreamError
from router.proxy.api_errors import ApiError

ALIAS = "sleeptime"


class Lister(Protocol):
    async def models(self) -> list[str]: ...


class ModelAlias:
    def __init__(
        self,
        upstream: Lister,
        *,
        configured: str = "",
        allowed: tuple[str, ...] = (),
        local: bool,
        prices: dict[str, ModelPrice] | None = None,
    ) -> None:
        self.upstream = upstream
        self.allowed = allowed
        self.local = local
        self.prices = prices or {}
        self._model = configured

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

    async def resolve(self, requested: Any) -> tuple[str, bool]:
        """(the model to name upstream, whether it replaces the client's), or an ApiError."""
        try:
            if not requested or requested == ALIAS:
                return await self.upstream_model(), True
            if await self._accepts(requested):
                return requested, False
        except (UpstreamError, LookupError) as exc:
            message = f"cannot resolve the upstream model for 'sleeptime': {exc}"
            raise ApiError(
                502, message, type="upstream_error", code="upstream_model_unknown"
            ) from None
        message = f"The model '{requested}' does not exist or you do not have access to it."
        raise ApiError(404, message, param="model", code="model_not_found")

    async def _accepts(self, model: str) -> bool:
        if self.allowed:
            return model in self.allowed
        if self.local:
            return model == await self.upstream_model()
        return True
