"""The admin API: client keys, reached with the master key only (`router.proxy.gate`).

    POST   /admin/keys         {"name", "rpm"?, "tpm"?, "budget_usd"?} -> 201, the key once
    GET    /admin/keys         every key, live and revoked: prefix, limits, spend; no secret
    DELETE /admin/keys/{name}  revoke: refused by this proxy at once, by others within ~1 s

`sleeptime keys` does the same on the store directly, for an operator at the shell.
"""

from __future__ import annotations

import json
from typing import Any

from anyio import to_thread
from fastapi import FastAPI, Request
from fastapi.responses import Response

from router.apikeys import mint
from router.proxy.api_errors import ApiError, bad_request
from router.proxy.bodies import load_object, read_body
from router.proxy.gate import principal_of
from router.proxy.state import ProxyState
from router.store.base import ApiKey, KeyExists

SMALL_BODY = 16 * 1024
LIMITS = ("rpm", "tpm")


def add_routes(app: FastAPI) -> None:
    app.add_api_route("/admin/keys", create_key, methods=["POST"], status_code=201)
    app.add_api_route("/admin/keys", list_keys, methods=["GET"])
    app.add_api_route("/admin/keys/{name}", revoke_key, methods=["DELETE"])


async def create_key(request: Request) -> Response:
    state = _master(request)
    body = load_object(await read_body(request, SMALL_BODY))
    name, limits, budget = _name(body), _limits(body), _budget(body)
    try:
        key, record = mint(name, rpm=limits[0], tpm=limits[1], budget_usd=budget)
    except ValueError as exc:
        raise bad_request(str(exc), param="name") from None
    try:
        await to_thread.run_sync(state.store.create_key, record)
    except KeyExists as exc:
        raise ApiError(409, str(exc), param="name", code="key_exists") from None
    state.keys.reload()
    return _json({**key_view(record, 0.0), "key": key}, 201)


async def list_keys(request: Request) -> Response:
    state = _master(request)
    keys = await to_thread.run_sync(state.store.list_keys)
    data = [key_view(key, state.spend.of(key.tenant)) for key in keys]
    return _json({"object": "list", "data": data})


async def revoke_key(request: Request) -> Response:
    state = _master(request)
    name = request.path_params["name"]
    revoked = await to_thread.run_sync(state.store.revoke_key, name)
    if revoked is None:
        raise ApiError(404, f"no live key named {name!r}", param="name", code="key_not_found")
    state.keys.reload()
    return _json(key_view(revoked, state.spend.of(revoked.tenant)))


def key_view(key: ApiKey, spend_usd: float) -> dict[str, Any]:
    """What may be shown of a key: never the key, never its hash."""
    return {
        "object": "sleeptime.key",
        "id": key.key_id,
        "name": key.name,
        "prefix": key.prefix,
        "created": key.created,
        "revoked": not key.live,
        "revoked_at": key.revoked_at,
        "rpm": key.rpm,
        "tpm": key.tpm,
        "budget_usd": key.budget_usd,
        "spend_usd": round(spend_usd, 6),
    }


def _master(request: Request) -> ProxyState:
    """The gate lets only the master key here; checked again, since a route added later
    outside /admin/ must not inherit these powers by accident."""
    if not principal_of(request.scope).master:
        raise ApiError(403, "only the master key may manage keys", code="forbidden")
    state: ProxyState = request.app.state.proxy
    return state


def _name(body: dict[str, Any]) -> str:
    name = body.get("name")
    if not isinstance(name, str) or not name:
        raise bad_request("'name' must be a non-empty string", param="name")
    return name


def _limits(body: dict[str, Any]) -> tuple[int, int]:
    found = []
    for field in LIMITS:
        value = body.get(field, 0)
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise bad_request(f"'{field}' must be a whole number, 0 or more", param=field)
        found.append(value)
    return found[0], found[1]


def _budget(body: dict[str, Any]) -> float | None:
    value = body.get("budget_usd")
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value < 1e12:
        raise bad_request("'budget_usd' must be a number of dollars, 0 or more", param="budget_usd")
    return float(value)


def _json(data: Any, status: int = 200) -> Response:
    return Response(json.dumps(data).encode(), status, media_type="application/json")
