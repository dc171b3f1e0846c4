"""The bound on body bytes buffered at once: takes, waits in order, gives back."""

from __future__ import annotations

import asyncio

import pytest

from router.proxy.body_budget import ByteBudget


def run(coroutine: object) -> object:
    return asyncio.run(coroutine)  # type: ignore[arg-type]


def test_takes_and_gives_back() -> None:
    async def scenario() -> None:
        budget = ByteBudget(100)
        assert await budget.take(60) == 60 and budget.free == 40
        budget.give(60)
        assert budget.free == 100

    run(scenario())


def test_a_reader_past_the_budget_waits_until_bytes_are_given_back() -> None:
    async def scenario() -> None:
        budget = ByteBudget(100)
        await budget.take(80)
        waiter = asyncio.create_task(budget.take(50))
        await asyncio.sleep(0.01)
        assert not waiter.done()
        budget.give(80)
        assert await asyncio.wait_for(waiter, 1) == 50 and budget.free == 50

    run(scenario())


def test_waiters_are_served_in_order() -> None:
    """A big body is not starved by small ones that would fit before it."""

    async def scenario() -> None:
        budget = ByteBudget(100)
        await budget.take(90)
        big = asyncio.create_task(budget.take(60))
        await asyncio.sleep(0)
        small = asyncio.create_task(budget.take(5))
        await asyncio.sleep(0.01)
        assert not big.done() and not small.done()  # 10 free, but the big one is first
        budget.give(90)
        await asyncio.wait_for(asyncio.gather(big, small), 1)
        assert budget.free == 35

    run(scenario())


def test_a_chunk_larger_than_the_budget_takes_all_of_it() -> None:
    async def scenario() -> None:
        budget = ByteBudget(100)
        assert await budget.take(500) == 100 and budget.free == 0
        budget.give(100)
        assert budget.free == 100

    run(scenario())


def test_a_waiter_that_gives_up_leaves_no_debt() -> None:
    async def scenario() -> None:
        budget = ByteBudget(100)
        await budget.take(100)
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(budget.take(10), 0.01)
        budget.give(100)
        assert budget.free == 100 and await budget.take(100) == 100

    run(scenario())
