"""The chat stream relay settles a request's record before the last byte leaves."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from format_contract import FakeStream

from router.proxy.formats.chat_relay import StreamRelay
from router.upstream import DONE_EVENT

USAGE = {"prompt_tokens": 5, "completion_tokens": 2, "total_tokens": 7}


def event(chunk: dict[str, Any]) -> bytes:
    return b"data: " + json.dumps(chunk).encode() + b"\n\n"


FINISHED = [
    event({"choices": [{"delta": {"content": "9"}, "finish_reason": None}]}),
    event({"choices": [{"delta": {}, "finish_reason": "stop"}]}),
    event({"choices": [], "usage": USAGE}),
]


def relay_log(events: list[bytes], *, take: int | None = None) -> list[Any]:
    """What happened, in order: ("sent", bytes) per event and ("settled", ...) once."""
    log: list[Any] = []
    relay = StreamRelay(
        FakeStream(events), before_done=lambda *settled: log.append(("settled", *settled))
    )

    async def consume() -> None:
        stream = relay.events()
        async for sent in stream:
            log.append(("sent", sent))
            if take is not None and len([x for x in log if x[0] == "sent"]) >= take:
                break
        await stream.aclose()

    asyncio.run(consume())
    return log


def test_the_record_is_settled_before_the_upstreams_done() -> None:
    log = relay_log([*FINISHED, DONE_EVENT])
    assert log[-2] == ("settled", 200, None, USAGE)
    assert log[-1] == ("sent", DONE_EVENT)
    assert [x[0] for x in log].count("settled") == 1


def test_a_stream_without_done_is_settled_before_ours() -> None:
    log = relay_log(FINISHED)
    assert log[-2] == ("settled", 200, None, USAGE) and log[-1] == ("sent", DONE_EVENT)


def test_an_unfinished_stream_is_settled_as_the_error_the_client_sees() -> None:
    log = relay_log(FINISHED[:1])
    settled = next(x for x in log if x[0] == "settled")
    assert settled[1:3] == (502, "upstream_bad_response")
    assert log.index(settled) == len(log) - 2 and log[-1] == ("sent", DONE_EVENT)


def test_a_client_that_leaves_early_is_left_to_the_caller() -> None:
    assert all(x[0] == "sent" for x in relay_log([*FINISHED, DONE_EVENT], take=1))
