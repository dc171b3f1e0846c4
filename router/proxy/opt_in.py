"""Whether the router routes a request at all: opt-in, per model name or per request.

A proxy started with a router (`serve --policy`, `--router enriched`) routes only the
requests that ask for it; every other request passes through as the client sent it,
so an application that names its own model keeps its own model's answers:

    X-Sleeptime-Routing: policy | off    the request's own choice; it wins
    model "sleeptime" (or none)          routed: the proxy's own name is the opt-in
                                         (unless its [[model]] entry says route = "off")
    a [[model]] entry with route = ...   that routing for all its names
    any other model name                 off

The response says which applied (`X-Sleeptime-Routing`). With the pass-through router
nothing is routed, whatever the request asks. One `RoutingRules` per running proxy
(`rules_of`) holds the model list's choices and the router's answer formats.
"""

from __future__ import annotations

from typing import Any, Literal
from weakref import WeakKeyDictionary

from router.model_list import DEFAULT_ALIAS, ROUTINGS, routing_by_name
from router.proxy.api_errors import bad_request
from router.proxy.routing import PassThroughRouter
from router.proxy.state import ProxyState

HEADER = "x-sleeptime-routing"
Routing = Literal["policy", "off"]


class RoutingRules:
    def __init__(self, state: ProxyState) -> None:
        self.by_name = routing_by_name(state.config.settings.model_list)
        self.routes = not isinstance(state.router, PassThroughRouter)
        # None: the router handles any answer format (router.proxy.routable).
        self.formats: frozenset[str] | None = getattr(state.router, "formats", None)

    def routing(self, header: str | None, model: Any) -> Routing:
        """The request's choice, else its model name's; a header value not in ROUTINGS is
        the client's mistake (400), even where nothing is routed."""
        asked = _asked(header)
        if not self.routes:
            return "off"
        if asked is not None:
            return asked
        name = model or DEFAULT_ALIAS
        chosen = self.by_name.get(name) if isinstance(name, str) else None
        return "policy" if chosen == "policy" else "off"


_RULES: WeakKeyDictionary[ProxyState, RoutingRules] = WeakKeyDictionary()


def rules_of(state: ProxyState) -> RoutingRules:
    """Built at a running proxy's first routed request, kept as long as the proxy."""
    rules = _RULES.get(state)
    if rules is None:
        rules = _RULES[state] = RoutingRules(state)
    return rules


def _asked(header: str | None) -> Routing | None:
    if header is None:
        return None
    value = header.strip().lower()
    if value == "policy" or value == "off":
        return value
    choices = " or ".join(ROUTINGS)
    raise bad_request(f"the X-Sleeptime-Routing header must be {choices}; got {header[:40]!r}")
