"""Everything one running proxy holds, built by the app's lifespan and shared by its routes.

One small object per concern, so each can be read, tested and replaced alone:

    limits    KeyLimits     per-key requests in flight (429 beyond `max_inflight_per_key`)
    inflight  InFlight      user requests in flight, what the sleep-time worker waits on
    contexts  ContextCache  context records, kept `context_cache_s`
    records   Records       request ids, the record journal and writer, sightings, sleep queue
    costs     Costs         the paper cost of an answer, the tokens-saved yardstick
    models    ModelAlias    what "sleeptime" names upstream
    metrics   Metrics       the Prometheus registry
    tenants   Tenants       API key -> tenant
"""

from __future__ import annotations

from policies import Prices
from router.proxy.config import ProxyConfig
from router.proxy.context_cache import ContextCache
from router.proxy.costs import Costs
from router.proxy.inflight import InFlight
from router.proxy.limits import KeyLimits
from router.proxy.model_alias import ModelAlias
from router.proxy.prometheus import Metrics
from router.proxy.records import Records
from router.proxy.routing import Router
from router.proxy.tenants import Tenants
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
        self.models = ModelAlias(
            forwarder,
            configured=upstream_model,
            allowed=config.models,
            local=config.settings.uses_local_model,
        )
        self.worker: SleepWorker | None = None

    def attach(self, worker: SleepWorker) -> None:
        """The worker runs: the last request to leave, and each queued job, wake it."""
        self.worker = self.inflight.worker = self.records.worker = worker

    def close(self) -> None:
        self.records.close()
