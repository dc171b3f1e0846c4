"""Sleep-time work is charged to the key whose context it serves.

A finished job's tokens are priced at the sleep-time rate (`ModelPrice.sleep_discount`) of
the model the worker used, added to the tenant's running spend and written to the store
through the record writer. A job of a key already over its budget is never started: its
budget function raises `OverBudget`, before any upstream call, and the worker fails the
job with that reason, which the context's view shows.
"""

from __future__ import annotations

from router.proxy.spend import OverBudget, dollars
from router.proxy.state import ProxyState
from router.sleep import SleepBudget
from router.store.base import ContextRecord
from router.worker import SleepBudgetFn, SleepUsage


def charge_sleep(state: ProxyState, tenant: str, usage: SleepUsage) -> None:
    price = state.models.price_of(_model(state))
    usd = dollars(price, usage.prompt_tokens, usage.completion_tokens, sleep=True)
    state.charge(tenant, usage.prompt_tokens + usage.completion_tokens, usd, sleep=True)
    if usd > 0:
        state.records.charge_sleep(tenant, usd)


def within_budget(state: ProxyState, budget: SleepBudgetFn) -> SleepBudgetFn:
    def checked(context: ContextRecord) -> SleepBudget:
        limit = _budget_of(state, context.tenant)
        if state.spend.over(context.tenant, limit):
            raise OverBudget(f"the key's budget of ${limit:g} is used up: no sleep-time work")
        return budget(context)

    return checked


def _budget_of(state: ProxyState, tenant: str) -> float | None:
    key = state.keys.key_of(tenant)
    return key.budget_usd if key is not None else None


def _model(state: ProxyState) -> str:
    """The model the worker slept with: the alias resolves it before the first pass."""
    return state.models.default_name or state.config.settings.upstream_model
