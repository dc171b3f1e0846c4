"""The model list of the settings file: `[[model]]` tables, parsed and checked once.

    [[model]]
    name = "fast"                     # what clients send as "model"
    aliases = ["gpt-4o-mini"]         # other names for it ("sleeptime" makes it the default)
    upstream_url = "https://api.example.com/v1"   # empty: the flat upstream_url (or embedded)
    upstream_key_env = "EXAMPLE_KEY"  # or upstream_key = "..."
    upstream_model = "gpt-4o-mini"    # what the upstream is asked for (default: name)
    input = 0.15                      # dollars per million tokens; with output, prices the model
    cached_input = 0.075
    output = 0.60
    sleep_discount = 0.5
    fallbacks = ["backup"]            # tried in order on 5xx, timeout or connection failure
    route = "policy"                  # "policy": the router routes requests naming it; "off":
                                      # they pass through (unset: only "sleeptime" is routed)

Every mistake is a ConfigError that names the entry, so an operator reads one line and
knows which table to fix: the proxy must not start with a list it would half-serve.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from policies.cost import ModelPrice
from router.errors import ConfigError

DEFAULT_ALIAS = "sleeptime"
_TEXT = ("name", "upstream_url", "upstream_key", "upstream_key_env", "upstream_model")
_PRICES = ("input", "cached_input", "output", "sleep_discount")
KEYS = frozenset((*_TEXT, *_PRICES, "aliases", "fallbacks", "route"))
ROUTINGS = ("policy", "off")  # what a client's model name may opt into (router.proxy.opt_in)


@dataclass(frozen=True)
class ModelEntry:
    """One served model. `upstream_url` empty: the default upstream (flat settings)."""

    name: str
    upstream_model: str
    aliases: tuple[str, ...] = ()
    upstream_url: str = ""
    upstream_key: str = field(default="", repr=False)
    price: ModelPrice | None = None
    fallbacks: tuple[str, ...] = ()
    route: str = ""  # "policy" or "off"; "": as the proxy decides for a name (opt_in)

    @property
    def names(self) -> tuple[str, ...]:
        return (self.name, *self.aliases)


def parse_models(tables: Any, environ: Mapping[str, str]) -> tuple[ModelEntry, ...]:
    """The `model` array of the settings file; keys named by `upstream_key_env` are read
    from `environ` now, so a missing variable stops the start, not the first request."""
    if isinstance(tables, tuple) and all(isinstance(t, ModelEntry) for t in tables):
        return tables  # already parsed (an override of a parsed Settings)
    if not isinstance(tables, list) or not all(isinstance(t, dict) for t in tables):
        raise ConfigError("'model' must be an array of tables ([[model]] in the settings file)")
    entries = tuple(_entry(index, table, environ) for index, table in enumerate(tables))
    check_models(entries)
    return entries


def check_models(entries: tuple[ModelEntry, ...]) -> None:
    """Names and aliases unique, fallbacks naming models of the list, and no cycle."""
    owner: dict[str, str] = {}
    for number, entry in enumerate(entries, 1):
        for name in entry.names:
            if name in owner:
                raise ConfigError(
                    f"model {entry.name!r} (entry #{number}): {name!r} already names"
                    f" model {owner[name]!r}"
                )
            owner[name] = entry.name
    by_name = {entry.name: entry for entry in entries}
    for entry in entries:
        for fallback in entry.fallbacks:
            if fallback not in by_name:
                raise ConfigError(
                    f"model {entry.name!r}: fallback {fallback!r} names no model of the list"
                )
    for entry in entries:
        _check_no_cycle(entry.name, by_name, ())


def default_model(entries: tuple[ModelEntry, ...]) -> ModelEntry:
    """The one that lists "sleeptime" among its aliases, else the first."""
    return next((e for e in entries if DEFAULT_ALIAS in e.aliases), entries[0])


def routing_by_name(entries: tuple[ModelEntry, ...]) -> dict[str, str]:
    """Every name whose entry sets `route`, to that routing; "sleeptime" to the default
    model's, else "policy": the proxy's own name is what a client sends to be routed."""
    by_name = {name: e.route for e in entries if e.route for name in e.names}
    default = default_model(entries).route if entries else ""
    by_name.setdefault(DEFAULT_ALIAS, default or "policy")
    return by_name


def _check_no_cycle(name: str, by_name: dict[str, ModelEntry], path: tuple[str, ...]) -> None:
    if name in path:
        loop = " -> ".join((*path[path.index(name) :], name))
        raise ConfigError(f"model {path[0]!r}: fallbacks form a cycle ({loop})")
    for fallback in by_name[name].fallbacks:
        _check_no_cycle(fallback, by_name, (*path, name))


def _entry(index: int, table: dict[str, Any], environ: Mapping[str, str]) -> ModelEntry:
    label = repr(table["name"]) if isinstance(table.get("name"), str) else f"#{index + 1}"
    where = f"model {label}"
    unknown = set(table) - KEYS
    if unknown:
        raise ConfigError(f"{where}: unknown key(s) {', '.join(sorted(unknown))}")
    text = {key: _text(where, key, table.get(key, "")) for key in _TEXT}
    if not text["name"]:
        raise ConfigError(f"{where}: 'name' is required")
    return ModelEntry(
        name=text["name"],
        upstream_model=text["upstream_model"] or text["name"],
        aliases=_names(where, "aliases", table.get("aliases", [])),
        upstream_url=_url(where, text["upstream_url"]),
        upstream_key=_key(where, text, environ),
        price=_price(where, table),
        fallbacks=_names(where, "fallbacks", table.get("fallbacks", [])),
        route=_route(where, table.get("route", "")),
    )


def _text(where: str, key: str, value: Any) -> str:
    if not isinstance(value, str):
        raise ConfigError(f"{where}: {key!r} must be a string")
    return value.strip()


def _names(where: str, key: str, value: Any) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(v, str) and v.strip() for v in value):
        raise ConfigError(f"{where}: {key!r} must be a list of non-empty strings")
    return tuple(v.strip() for v in value)


def _route(where: str, value: Any) -> str:
    if value != "" and value not in ROUTINGS:
        raise ConfigError(f"{where}: 'route' must be one of {', '.join(ROUTINGS)}; got {value!r}")
    return str(value)


def _url(where: str, url: str) -> str:
    if url and not url.startswith(("http://", "https://")):
        raise ConfigError(f"{where}: 'upstream_url' must start with http:// or https://")
    return url


def _key(where: str, text: dict[str, str], environ: Mapping[str, str]) -> str:
    variable = text["upstream_key_env"]
    if variable and text["upstream_key"]:
        raise ConfigError(f"{where}: set 'upstream_key' or 'upstream_key_env', not both")
    if not variable:
        return text["upstream_key"]
    if not environ.get(variable):
        raise ConfigError(f"{where}: the environment variable {variable} (its key) is not set")
    return environ[variable]


def _price(where: str, table: dict[str, Any]) -> ModelPrice | None:
    given = {key: table[key] for key in _PRICES if key in table}
    if not given:
        return None
    try:
        return ModelPrice.from_dict(given)
    except ValueError as error:  # the checks are the price's own; the entry is ours to name
        raise ConfigError(f"{where}: {error}") from None
