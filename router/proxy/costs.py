"""What an answer cost, and what it saved against the full route.

The cost is the paper's (`policies.Prices.paper_cost`), in sleep-time token units, so
the proxy's records and replay price a query alike. The tokens-saved header compares
an answer with a running mean of what the full route costs the same tenant (per
tenant, so no figure crosses tenants).
"""

from __future__ import annotations

from policies import Prices

MAX_TENANTS = 10_000  # means kept in memory; the lot is dropped when it is full
WEIGHT = 0.1  # of the newest full answer in the running mean


class Costs:
    def __init__(self, prices: Prices) -> None:
        self.prices = prices
        self._full_tokens: dict[str, float] = {}

    def paper_cost(self, route: str, completion_tokens: int) -> float:
        """The paper cost of one answer (policies.cost), in sleep-time token units. A cached
        answer calls no upstream: the usage it shows the client is an estimate of its
        length, and it costs nothing, as replay charges it (found by the parity test)."""
        if route == "cached":
            return 0.0
        return float(self.prices.paper_cost(completion_tokens))

    def saw_completion(self, tenant: str, route: str, completion_tokens: int) -> None:
        """Only full answers move the yardstick."""
        if route != "full" or completion_tokens <= 0:
            return
        known = self._full_tokens.get(tenant)
        if known is None and len(self._full_tokens) >= MAX_TENANTS:
            self._full_tokens.clear()
        mean = completion_tokens if known is None else known + WEIGHT * (completion_tokens - known)
        self._full_tokens[tenant] = mean

    def tokens_saved(self, tenant: str, route: str, completion_tokens: int | None) -> int | None:
        """Completion tokens this answer did not spend against the tenant's full-route mean;
        None on the full route, before any full answer, or while the count is unknown
        (a stream's headers leave before its tokens)."""
        full = self._full_tokens.get(tenant)
        if route == "full" or full is None or completion_tokens is None:
            return None
        return max(0, round(full - completion_tokens))
