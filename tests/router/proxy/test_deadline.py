"""The cheap per-task deadline the body reader uses."""

from __future__ import annotations

import asyncio

import pytest

from router.proxy.deadline import Deadline


def test_an_await_past_the_deadline_is_a_timeout() -> None:
    async def late() -> None:
        with Deadline(0.05):
            await asyncio.sleep(5)

    with pytest.raises(TimeoutError):
        asyncio.run(asyncio.wait_for(late(), 2))


def test_a_block_within_the_deadline_is_untouched() -> None:
    async def quick() -> str:
        with Deadline(5):
            await asyncio.sleep(0.01)
        await asyncio.sleep(0.01)  # the timer was cancelled: nothing fires later
        return "done"

    assert asyncio.run(quick()) == "done"


def test_someone_elses_cancel_stays_a_cancel() -> None:
    async def scenario() -> None:
        async def wait() -> None:
            with Deadline(5):
                await asyncio.sleep(5)

        task = asyncio.create_task(wait())
        await asyncio.sleep(0.01)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(scenario())
