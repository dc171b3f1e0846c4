"""Who may call the proxy, as whom, and how often: the app's outermost layer.

Before a byte of the body is read, before any upstream call or sleep-time work, `Gate`
reads the `Authorization` header and either answers the request itself (401, 403, 404 or
429, in OpenAI's shape) or passes it on with its `Principal` in `scope["state"]`, where
the pipeline and the endpoints find the tenant.

With a master key (`master_key`), a request carries the master key or a live client key
(`sleeptime keys`); each client key is its own tenant, with its requests and tokens per
minute and its budget in dollars. The master key alone reaches `/admin/*` and `/metrics`.
Without a master key the proxy is local-only (`sleeptime serve` listens on loopback
only): any bearer key names its caller's tenant, a request with none is refused, and
there is no admin API. `/health`, `/health/ready` and the API docs are always open.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from router.apikeys import bearer, is_master, key_hash
from router.proxy.api_errors import ApiError
from router.proxy.keyring import KeyRing
from router.proxy.rates import Rates
from router.proxy.spend import Spend, budget_refusal
from router.proxy.tenants import Tenants

OPEN = frozenset({"/health", "/health/ready", "/openapi.json", "/docs", "/docs/oauth2-redirect"})
MASTER_ONLY = ("/admin/", "/metrics")
MASTER = "master"
LOCAL = "local"  # the key label of every local-mode tenant: metrics never name a tenant


@dataclass(frozen=True)
class Principal:
    """Who sent a request: its tenant, the key's name, the key's limits (0: none)."""

    tenant: str
    name: str
    master: bool = False
    rpm: int = 0
    tpm: int = 0
    budget_usd: float | None = None


class Gatekeeper:
    def __init__(
        self,
        *,
        master_key: str,
        keys: KeyRing,
        tenants: Tenants,
        rates: Rates,
        spend: Spend,
        default_rpm: int = 0,
        default_tpm: int = 0,
    ) -> None:
        self.master_key = master_key
        self.keys = keys
        self.tenants = tenants
        self.rates = rates
        self.spend = spend
        self.default_rpm = default_rpm
        self.default_tpm = default_tpm

    @property
    def local(self) -> bool:
        return not self.master_key

    def admit(self, path: str, authorization: str | None) -> Principal:
        """The request's principal, its request counted; else the ApiError to answer."""
        key = bearer(authorization)
        if self.local:
            return self._local(path, key)
        if not key:
            raise unauthorized("no API key: send 'Authorization: Bearer <key>'")
        if is_master(key, self.master_key):
            return Principal(MASTER, MASTER, master=True)
        principal = self._client(key)
        if path.startswith(MASTER_ONLY):
            raise ApiError(403, f"only the master key may use {path}", code="forbidden")
        self._limit(principal)
        return principal

    def label_of(self, tenant: str) -> str:
        """A tenant's name in metrics: its key's name; never a key, never a tenant hash."""
        if tenant == MASTER:
            return MASTER
        key = self.keys.key_of(tenant)
        return key.name if key is not None else LOCAL

    def _local(self, path: str, key: str) -> Principal:
        if path.startswith("/admin/"):
            message = "the admin API needs a master key: set SLEEPTIME_MASTER_KEY (--master-key)"
            raise ApiError(404, message, code="not_found")
        if path == "/metrics":
            return Principal(LOCAL, LOCAL)
        if not key:
            raise unauthorized(
                "no API key: this proxy runs in local mode (no master key), where any bearer "
                "key names the caller's tenant; send 'Authorization: Bearer <any key>'"
            )
        return Principal(self.tenants.of_key(key), LOCAL)

    def _client(self, key: str) -> Principal:
        found = self.keys.find(key_hash(key))
        if found is None:
            raise unauthorized("incorrect API key provided")
        if not found.live:
            raise unauthorized(f"the API key {found.name!r} was revoked")
        return Principal(
            found.tenant,
            found.name,
            rpm=found.rpm or self.default_rpm,
            tpm=found.tpm or self.default_tpm,
            budget_usd=found.budget_usd,
        )

    def _limit(self, principal: Principal) -> None:
        if self.spend.over(principal.tenant, principal.budget_usd):
            assert principal.budget_usd is not None
            raise budget_refusal(principal.name, principal.budget_usd)
        refused = self.rates.admit(principal.tenant, principal.rpm, principal.tpm)
        if refused is not None:
            message = (
                f"rate limit of {refused.limit} {refused.what} per minute reached for the API key "
                f"{principal.name!r}; retry after {refused.retry_after_s} s"
            )
            raise ApiError(
                429,
                message,
                type="rate_limit_error",
                code="rate_limit_exceeded",
                headers={"Retry-After": str(refused.retry_after_s)},
            )


def unauthorized(message: str) -> ApiError:
    return ApiError(401, message, code="invalid_api_key", headers={"WWW-Authenticate": "Bearer"})


def principal_of(scope: Any) -> Principal:
    """What the gate put on a request it let through."""
    principal: Principal = scope["state"]["principal"]
    return principal


class Gate:
    """ASGI middleware: outermost but for Starlette's error layer and CORS (whose preflight
    carries no key). The proxy's state is read per request, since the lifespan builds it."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http" or scope["path"] in OPEN:
            await self.app(scope, receive, send)
            return
        state = scope["app"].state.proxy
        gatekeeper: Gatekeeper = state.gate
        try:
            principal = gatekeeper.admit(scope["path"], _authorization(scope["headers"]))
        except ApiError as error:
            state.metrics.refused.labels(str(error.status), error.code or "").inc()
            await error.response()(scope, receive, send)
            return
        scope.setdefault("state", {})["principal"] = principal
        await self.app(scope, receive, send)


def cors_origins(setting: str) -> list[str]:
    """The `cors_origins` setting's origins; none: no CORS headers at all."""
    return [origin.strip() for origin in setting.split(",") if origin.strip()]


def _authorization(headers: list[tuple[bytes, bytes]]) -> str | None:
    for name, value in headers:
        if name == b"authorization":
            return value.decode("latin-1")
    return None
