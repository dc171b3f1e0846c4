"""The models of a `[[model]]` list: names and aliases to routes, prices, `/v1/models`.

Every name and alias a client may send maps to a `Route` built once at start: the
model's upstream (one Forwarder per distinct URL and key, shared by the models on it),
the name its upstream knows it by, and its fallbacks. "sleeptime", or no model, is the
default model (the one that lists "sleeptime" among its aliases, else the first). A
name the list does not have is a 404, as with one upstream and an allow-list.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from policies.cost import ModelPrice, price_of
from router.errors import ConfigError
from router.model_list import DEFAULT_ALIAS, ModelEntry, default_model
from router.proxy.api_errors import ApiError
from router.proxy.fallback import Route, Step
from router.proxy.readiness import Readiness
from router.upstream import Forwarder

MakeForwarder = Callable[[str, str], Forwarder]  # (base URL, key) -> a new Forwarder


class ModelList:
    def __init__(
        self,
        entries: tuple[ModelEntry, ...],
        upstreams: Mapping[str, Forwarder],
        default_key: str = "",
    ) -> None:
        """`upstreams`: each entry's Forwarder, by the entry's name; `default_key`: the key of
        the default upstream, for entries without their own URL."""
        self.entries = entries
        self.default = default_model(entries)
        self.upstream = upstreams[self.default.name]
        # The sleep-time worker's key, for the default model's upstream.
        self.upstream_key = self.default.upstream_key if self.default.upstream_url else default_key
        self.prices: dict[str, ModelPrice] = {e.name: e.price for e in entries if e.price}
        by_name = {entry.name: entry for entry in entries}
        steps = {e.name: Step(e.name, e.upstream_model, upstreams[e.name]) for e in entries}
        self._routes: dict[str, Route] = {}
        for entry in entries:
            chain = tuple(steps[name] for name in _chain(entry.name, by_name))
            for name in entry.names:
                self._routes[name] = Route(chain, replaced=name != entry.upstream_model)
        first = self._routes[self.default.name].steps
        self._routes.setdefault(DEFAULT_ALIAS, Route(first, replaced=True))
        self.readiness = Readiness([(u.base_url, _lister(u)) for u in _distinct_upstreams(first)])

    @property
    def default_name(self) -> str:
        """The default model's name in records and prices (the sleep-time worker's model)."""
        return self.default.name

    def price_of(self, model: str) -> ModelPrice | None:
        """Dollars per million tokens of a model of the list (records name it by its name)."""
        return price_of(self.prices, model)

    async def upstream_model(self) -> str:
        """What the sleep-time worker asks the default upstream for."""
        return self.default.upstream_model

    async def resolve(self, requested: Any) -> Route:
        route = self._routes.get(requested or DEFAULT_ALIAS) if _hashable(requested) else None
        if route is None:
            message = f"The model '{requested}' does not exist or you do not have access to it."
            raise ApiError(404, message, param="model", code="model_not_found")
        return route

    def listing(self) -> dict[str, Any]:
        """OpenAI's list shape: every name a client may send, the default's alias too."""
        names = [name for entry in self.entries for name in entry.names]
        if DEFAULT_ALIAS not in names:
            names.append(DEFAULT_ALIAS)
        data = [{"id": n, "object": "model", "created": 0, "owned_by": "sleeptime"} for n in names]
        return {"object": "list", "data": data}


def build_model_list(
    entries: tuple[ModelEntry, ...],
    default: Forwarder | None,
    make: MakeForwarder,
    default_key: str = "",
) -> ModelList:
    """One Forwarder per distinct (URL, key); entries without a URL use `default` (whose key
    is `default_key`)."""
    made: dict[tuple[str, str], Forwarder] = {}
    upstreams: dict[str, Forwarder] = {}
    for entry in entries:
        if not entry.upstream_url:
            if default is None:
                raise ConfigError(f"model {entry.name!r}: no upstream_url, and no default upstream")
            upstreams[entry.name] = default
            continue
        where = (entry.upstream_url, entry.upstream_key)
        if where not in made:
            made[where] = make(*where)
        upstreams[entry.name] = made[where]
    return ModelList(entries, upstreams, default_key)


def _chain(name: str, by_name: Mapping[str, ModelEntry]) -> list[str]:
    """The model, then its fallbacks depth first, each once (the list has no cycle)."""
    order = [name]
    for fallback in by_name[name].fallbacks:
        order += [n for n in _chain(fallback, by_name) if n not in order]
    return order


def _distinct_upstreams(steps: tuple[Step, ...]) -> list[Forwarder]:
    """Readiness asks each upstream of the default's chain once, in the chain's order."""
    distinct: dict[int, Forwarder] = {}
    for step in steps:
        distinct.setdefault(id(step.upstream), step.upstream)
    return list(distinct.values())


def _lister(upstream: Forwarder) -> Callable[[float], Awaitable[object]]:
    """Readiness's probe: GET /models, its retries bounded by the probe's deadline."""
    return lambda deadline: upstream.get("/models", deadline=deadline)


def _hashable(value: Any) -> bool:
    return value is None or isinstance(value, str)
