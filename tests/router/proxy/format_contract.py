"""The contract every request format adapter keeps (`router.proxy.formats.adapter`).

A test class per adapter subclasses `FormatContract` and supplies two fixtures:
`adapter`, and `sample`, which writes a valid request body of that format. Nothing
here reads a format's JSON: what goes out is read back through the adapter itself.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any, Protocol

import pytest

from router.answer_formats import FORMATS
from router.proxy.api_errors import ApiError
from router.proxy.formats.adapter import FormatAdapter
from router.proxy.routing import PASS_THROUGH, RouteDecision
from router.store.base import ContextRecord


class Sample(Protocol):
    def __call__(
        self, query: str, context: str | None = None, *, stream: bool = False
    ) -> bytes: ...


class FakeStream:
    def __init__(self, events: list[bytes]) -> None:
        self._events = events

    async def events(self) -> AsyncIterator[bytes]:
        for item in self._events:
            yield item

    async def aclose(self) -> None:
        pass


def learned(notes: str, source: str = "explicit") -> ContextRecord:
    return ContextRecord("t", "c", 1, "Some facts.", source, 2, "done", notes, [], 0, None, 0.0)


def relayed(adapter: FormatAdapter[Any], events: list[bytes]) -> list[Any]:
    """What settled the stream: [(status, error code, usage)], and what was sent."""
    settled: list[Any] = []

    def settle(*args: Any) -> None:
        settled.append(args)

    relay = adapter.relay(
        FakeStream(events),  # type: ignore[arg-type]
        strip_usage=False,
        before_done=settle,
        spent_before=None,
    )

    async def consume() -> list[bytes]:
        return [event async for event in relay.events()]

    sent = asyncio.run(consume())
    return [settled, sent]


class FormatContract:
    def test_parse_keeps_the_clients_bytes(self, adapter: Any, sample: Sample) -> None:
        raw = sample("How many?", "Some facts.", stream=True)
        parsed = adapter.parse(raw)
        assert parsed.raw == raw and parsed.stream is True and parsed.context_name is None
        assert adapter.parse(sample("How many?")).stream is False

    @pytest.mark.parametrize("raw", [b"", b"[]", b"{not json", b"NaN"])
    def test_a_body_it_cannot_read_is_a_400(self, adapter: Any, raw: bytes) -> None:
        with pytest.raises(ApiError) as caught:
            adapter.parse(raw)
        assert caught.value.status == 400

    def test_the_query_and_its_context(self, adapter: Any, sample: Sample) -> None:
        parsed = adapter.parse(sample("How many?", "Some facts."))
        ref, query = adapter.identify(parsed, None)
        assert query == "How many?" and ref is not None and ref.source == "implicit"
        assert "Some facts." in ref.text
        named, _ = adapter.identify(parsed, "doc-1")
        assert (named.context_id, named.source) == ("doc-1", "explicit")
        alone, _ = adapter.identify(adapter.parse(sample("How many?")), None)
        assert alone is None

    def test_the_same_context_hashes_alike(self, adapter: Any, sample: Sample) -> None:
        first, _ = adapter.identify(adapter.parse(sample("One?", "Facts.")), None)
        second, _ = adapter.identify(adapter.parse(sample("Two?", "Facts.")), None)
        other, _ = adapter.identify(adapter.parse(sample("One?", "Other facts.")), None)
        assert first.context_id == second.context_id != other.context_id

    def test_pass_through_sends_the_clients_bytes(self, adapter: Any, sample: Sample) -> None:
        parsed = adapter.parse(sample("How many?", "Some facts."))
        rewrite = adapter.rewrite(parsed, PASS_THROUGH, None)
        assert adapter.outgoing(parsed, rewrite, model=None, stream_usage=False).body is parsed.raw

    def test_the_alias_names_the_upstream_model(self, adapter: Any, sample: Sample) -> None:
        parsed = adapter.parse(sample("How many?"))
        sent = adapter.outgoing(parsed, {}, model="upstream-1", stream_usage=False)
        assert adapter.parse(sent.body).model == "upstream-1"

    def test_enriched_sends_the_notes(self, adapter: Any, sample: Sample) -> None:
        parsed = adapter.parse(sample("How many?", "Some facts."))
        decision = RouteDecision("enriched", rung="answer")
        rewrite = adapter.rewrite(parsed, decision, learned("NOTE-9-EGGS"))
        sent = adapter.outgoing(parsed, rewrite, model=None, stream_usage=False).body
        assert b"NOTE-9-EGGS" in sent and adapter.parse(sent).stream is False

    def test_only_a_known_context_is_routable(self, adapter: Any, sample: Sample) -> None:
        parsed = adapter.parse(sample("How many?", "Some facts."))
        assert adapter.unroutable(parsed, None, None) == "no_context"
        assert adapter.unroutable(parsed, learned("n"), None) is None
        # Inferred from repeated messages, it declared no answer format: nothing is assumed.
        assert adapter.unroutable(parsed, learned("n", "implicit"), None) == "answer_format"
        assert adapter.unroutable(parsed, learned("n"), frozenset({"text"})) == "answer_format"

    def test_a_rungs_budget_lowers_only_an_attempts(self, adapter: Any, sample: Sample) -> None:
        """The cheap attempt's budget is the rung's; the full answer keeps the client's."""
        parsed = adapter.parse(sample("How many?", "Some facts."))
        attempt = RouteDecision("enriched", rung="answer")
        assert adapter.lowers_budget(parsed, adapter.rewrite(parsed, attempt, learned("n")))
        full = RouteDecision("full", rung="steps")
        assert not adapter.lowers_budget(parsed, adapter.rewrite(parsed, full, None))
        assert not adapter.lowers_budget(parsed, adapter.rewrite(parsed, PASS_THROUGH, None))

    def test_a_check_asks_whole(self, adapter: Any, sample: Sample) -> None:
        parsed = adapter.parse(sample("How many?", stream=True))
        sent = adapter.outgoing(parsed, {}, model="m", stream_usage=True).body
        assert adapter.parse(adapter.not_streamed(sent)).stream is False

    def test_its_own_answer_reads_back(self, adapter: Any) -> None:
        completion = adapter.completion("req-1", "m", "So: 42")
        assert adapter.final_answer(completion, FORMATS["number"]) == "42"
        assert not adapter.cut_short(completion)
        assert adapter.answer_of(completion).text == "So: 42"
        assert adapter.answer_of(completion).model == "m"
        assert adapter.tokens(adapter.usage_of(completion)) == adapter.tokens(
            adapter.estimate_usage("So: 42")
        )

    def test_usage_adds_up(self, adapter: Any) -> None:
        usage = adapter.estimate_usage("a few words here")
        prompt, completion, cached = adapter.tokens(usage)
        assert completion > 0
        assert adapter.tokens(adapter.add_usage(usage, usage, None)) == (
            2 * prompt,
            2 * completion,
            2 * cached,
        )
        assert adapter.tokens(None) == (0, 0, 0)
        answered = adapter.with_usage(adapter.completion("r", "m", "x"), usage)
        assert adapter.usage_of(answered) == usage

    def test_its_own_stream_relays_whole(self, adapter: Any, sample: Sample) -> None:
        parsed = adapter.parse(sample("How many?", stream=True))
        usage = adapter.estimate_usage("So: 42")
        events = adapter.events(parsed, "req-1", "m", "So: 42", usage)
        settled, sent = relayed(adapter, events)
        assert len(settled) == 1 and settled[0][:2] == (200, None)
        assert b"42" in b"".join(sent)

    def test_a_stream_cut_short_is_an_error(self, adapter: Any, sample: Sample) -> None:
        parsed = adapter.parse(sample("How many?", stream=True))
        events = adapter.events(parsed, "req-1", "m", "So: 42")
        settled, _ = relayed(adapter, events[:1])
        assert settled[0][0] >= 500
