"""One deadline per call, for every upstream client: the cases each backend must pass.

A subclass supplies `open_upstream` as for `UpstreamContract`. The waits a backend asks
for are recorded, not slept, so a test here sees the deadline's arithmetic (which wait
fits, which try starts) and, where a fake upstream hangs, the real time a call took.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
from fake_upstream import (
    FakeUpstream,
    completion,
    completion_body,
    error_reply,
    json_reply,
    stream_reply,
    usage_body,
)
from upstream_contract import BODY, EXACT, LONG_S, OpenUpstream, Upstream

from router.errors import UpstreamRateLimited, UpstreamServerError, UpstreamTimeout

HUNG_S = 3.0  # how long the fake upstream takes to answer a hung call


class DeadlineContract:
    @pytest.fixture
    def open_upstream(self) -> OpenUpstream:
        raise NotImplementedError("a backend's test class supplies this fixture")

    @pytest.fixture
    def patient(self, open_upstream: OpenUpstream, fake: FakeUpstream) -> Iterator[Upstream]:
        """A backend whose own timeout is long: the deadline each test passes is what binds."""
        backend = open_upstream(fake.url, retry=EXACT, timeout_s=LONG_S)
        yield backend
        backend.close()

    def test_a_deadline_shorter_than_the_timeout_bounds_the_call(
        self, patient: Upstream, fake: FakeUpstream
    ) -> None:
        fake.fallback = json_reply(completion_body("late"), delay_s=HUNG_S)
        started = time.monotonic()
        with pytest.raises(UpstreamTimeout) as caught:
            patient.complete(BODY, deadline=started + 0.3)
        assert 0.25 < time.monotonic() - started < 1.0 and caught.value.status == 504
        assert (len(fake.requests), patient.waits) == (1, [])

    def test_a_spent_deadline_sends_nothing(self, patient: Upstream, fake: FakeUpstream) -> None:
        with pytest.raises(UpstreamTimeout, match="did not answer within"):
            patient.complete(BODY, deadline=time.monotonic() - 1.0)
        with pytest.raises(UpstreamTimeout):
            patient.stream_text(BODY, deadline=time.monotonic())
        assert fake.requests == []

    def test_no_backoff_waits_past_the_deadline(
        self, patient: Upstream, fake: FakeUpstream
    ) -> None:
        """EXACT's first wait is 0.5 s: with 0.4 s left the 500 goes out at once."""
        fake.fallback = error_reply(500, "boom")
        with pytest.raises(UpstreamServerError, match="boom"):
            patient.complete(BODY, deadline=time.monotonic() + 0.4)
        assert (len(fake.requests), patient.waits) == (1, [])

    def test_a_retry_after_past_the_deadline_is_answered_at_once(
        self, patient: Upstream, fake: FakeUpstream
    ) -> None:
        fake.fallback = error_reply(429, "slow down", headers={"Retry-After": "2"})
        with pytest.raises(UpstreamRateLimited) as caught:
            patient.complete(BODY, deadline=time.monotonic() + 1.0)
        assert caught.value.retry_after == 2.0
        assert (len(fake.requests), patient.waits) == (1, [])

    def test_retries_that_fit_the_deadline_are_made(
        self, patient: Upstream, fake: FakeUpstream
    ) -> None:
        fake.enqueue(error_reply(500, "boom"), error_reply(503, "busy"), completion("ok"))
        status, answer = patient.complete(BODY, deadline=time.monotonic() + 5.0)
        assert status == 200 and answer["choices"][0]["message"]["content"] == "ok"
        assert patient.waits == [0.5, 1.0]

    def test_a_stream_gets_its_first_event_by_the_deadline(
        self, patient: Upstream, fake: FakeUpstream
    ) -> None:
        fake.fallback = stream_reply(["late"], usage=usage_body(1, 1), delay_s=HUNG_S)
        started = time.monotonic()
        with pytest.raises(UpstreamTimeout):
            patient.stream_text(BODY, deadline=started + 0.3)
        assert time.monotonic() - started < 1.0
        assert (len(fake.requests), patient.waits) == (1, [])
