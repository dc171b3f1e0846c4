"""What each tenant spent, in dollars, and whether a key's budget is used up.

The running total per tenant starts from the store (its requests' `cost_usd` and its
sleep-time charges) and grows in memory as requests finish and sleep-time jobs end, so a
budget check is a dict lookup. A request's cost is known only when it finishes, so a key
may go over its budget by the requests it had in flight; the next one is refused.

With replicas (`shared`), a tenant's spend is the larger of this replica's total and the
cluster's as last synced plus what was charged here since (`router.proxy.shared_usage`):
a budget used up through one replica is refused by the others within a sync interval.
"""

from __future__ import annotations

from policies.cost import ModelPrice
from router.proxy.api_errors import ApiError
from router.proxy.shared_usage import SharedUsage


class Spend:
    def __init__(
        self, totals: dict[str, float] | None = None, shared: SharedUsage | None = None
    ) -> None:
        self._totals = dict(totals or {})
        self.shared = shared

    def of(self, tenant: str) -> float:
        own = self._totals.get(tenant, 0.0)
        across = self.shared.usd(tenant) if self.shared is not None else None
        return own if across is None else max(own, across)

    def add(self, tenant: str, usd: float) -> None:
        if usd > 0:
            self._totals[tenant] = self._totals.get(tenant, 0.0) + usd
            if self.shared is not None:
                self.shared.count(tenant, usd=usd)

    def over(self, tenant: str, budget_usd: float | None) -> bool:
        if budget_usd is None:
            return False
        if self.shared is not None:
            self.shared.watch(tenant)
        return self.of(tenant) >= budget_usd


def dollars(
    price: ModelPrice | None, prompt: int, completion: int, cached: int = 0, *, sleep: bool = False
) -> float:
    """0 for an unpriced model: it is counted in tokens only."""
    if price is None:
        return 0.0
    return float(price.dollars(prompt, completion, cached, sleep=sleep))


def budget_refusal(name: str, budget_usd: float) -> ApiError:
    message = (
        f"the API key {name!r} has used its budget of ${budget_usd:g}; "
        "ask the operator to raise it or to issue another key"
    )
    return ApiError(429, message, type="insufficient_quota", code="insufficient_quota")


class OverBudget(Exception):
    """A sleep-time job of a key over its budget: failed with this reason, never started."""
