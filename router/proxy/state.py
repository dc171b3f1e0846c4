"""Everything one running proxy holds, built by the app's lifespan and shared by its routes.

One small object per concern, so each can be read, tested and replaced alone:

    gate      Gatekeeper    who a request is (master key, client key, local tenant), its
                            requests and tokens per minute and its budget (`router.proxy.gate`)
    keys      KeyRing       the store's client keys, in memory, at most a second old
    spend     Spend         dollars per tenant: requests and sleep-time work
    usage_sync UsageSync    on a shared store: keys' limits across replicas; else None
    limits    KeyLimits     per-key requests in flight (429 beyond `max_inflight_per_key`)
    inflight  InFlight      user requests in flight, what the sleep-time worker waits on
    contexts  ContextCache  context records, kept `context_cache_s`
    records   Records       request ids, the record journal and writer, sightings, sleep queue
    costs     Costs         the paper cost of an answer, the tokens-saved yardstick
    models    ModelAlias    what "sleeptime" names upstream; ModelList: the [[model]] list
    metrics   Metrics       the Prometheus registry
    tenants   Tenants       local mode's bearer key -> tenant
"""

from __future__ import annotations

from policies import Prices
from router.proxy.config import ProxyConfig
from router.proxy.context_cache import ContextCache
from router.proxy.costs import Costs
from router.proxy.gate import Gatekeeper
from router.proxy.inflight import InFlight
from router.proxy.keyring import KeyRing
from router.proxy.limits import KeyLimits
from router.proxy.model_alias import ModelAlias
from router.proxy.model_routes import ModelList
from router.proxy.prometheus import Metrics
from router.proxy.rates import Rates
from router.proxy.records import Records
from router.proxy.routing import Router
from router.proxy.shared_usage import SharedUsage
from router.proxy.spend import Spend
from router.proxy.tenants import Tenants
from router.proxy.usage_sync import UsageSync
from router.store import sqlite_path
from router.store.base import Store
from router.store.journal import RecordJournal
from router.upstream import Forwarder
from router.worker import SleepWorker


class ProxyState:
    def __init__(
        self,
        config: ProxyConfig,
        forwarder: Forwarder,
        store: Store,
        router: Router,
        tenants: Tenants,
        *,
        upstream_model: str = "",
        metrics: Metrics | None = None,
        journal: RecordJournal | None = None,
        models: ModelList | None = None,
    ) -> None:
        self.config = config
        self.forwarder = forwarder
        self.store = store
        self.router = router
        self.tenants = tenants
        self.metrics = metrics or Metrics()
        self.limits = KeyLimits(config.max_inflight_per_key)
        self.inflight = InFlight(self.metrics.inflight, config.max_inflight_for_sleep)
        self.contexts = ContextCache(store, config.context_cache_s, self.metrics.fallbacks)
        self.records = Records(
            store,
            journal=journal,
            max_queue=config.record_queue,
            sleep_enabled=config.sleep_enabled,
        )
        self.costs = Costs(Prices(test_ratio=config.settings.test_token_price_ratio))
        # A [[model]] list (built with its upstreams by the app), else the one upstream's alias.
        self.models: ModelAlias | ModelList = models or ModelAlias(
            forwarder,
            configured=upstream_model,
            allowed=config.models,
            local=config.settings.uses_local_model,
            upstream_key=config.settings.upstream_key,
        )
        self.keys = KeyRing(store)
        settings = config.settings
        # Replicas on a shared store share their keys' limits (`usage_sync`); started by the app.
        shared = SharedUsage() if settings.usage_sync_s > 0 and _is_shared(config) else None
        self.usage_sync = UsageSync(store, shared, settings.usage_sync_s) if shared else None
        self.spend = Spend(store.spend_by_tenant(), shared)
        self.gate = Gatekeeper(
            master_key=settings.master_key,
            keys=self.keys,
            tenants=tenants,
            rates=Rates(shared=shared),
            spend=self.spend,
            default_rpm=settings.default_rpm,
            default_tpm=settings.default_tpm,
        )
        self.worker: SleepWorker | None = None

    def attach(self, worker: SleepWorker) -> None:
        """The worker runs: the last request to leave, and each queued job, wake it."""
        self.worker = self.inflight.worker = self.records.worker = worker

    def charge(self, tenant: str, tokens: int, usd: float, *, sleep: bool = False) -> None:
        """A finished request's (or sleep-time job's) tokens and dollars, on its key."""
        self.gate.rates.spent_tokens(tenant, tokens)
        self.spend.add(tenant, usd)
        if usd > 0:
            kind = "sleep" if sleep else "request"
            self.metrics.count_spend(self.gate.label_of(tenant), kind, usd)

    def close(self) -> None:
        if self.usage_sync is not None:
            self.usage_sync.close()
        self.records.close()


def _is_shared(config: ProxyConfig) -> bool:
    """Not one process's SQLite file: other replicas may use the same store."""
    return sqlite_path(config.store_url) is None
