"""What a request format tells the pipeline: the one seam between the shared stages and a
body's JSON shape.

The pipeline (`router.proxy.pipeline`) runs the stages every routed endpoint shares
(tenant and limits, context lookup, the routing decision, the upstream call, the
record) and asks the format adapter wherever the shape of a body matters:

    parse         raw bytes -> the format's own request object (`Parsed`), or ApiError
    identify      where the query and the context live in it
    unroutable    why the router must not touch it (`router.proxy.routable`), or None
    rewrite       how a routing decision changes the body (learned notes, a rung's budget)
    lowers_budget whether that rewrite caps the answer below the client's own budget
    outgoing      the bytes sent upstream (model alias, sleeptime metadata, stream usage)
    completion, events, estimate_usage
                  the proxy's own answers (cached, or checked) shaped as the upstream's
    final_answer, answer_of, not_streamed, cut_short
                  reading an upstream answer for a check or a capped attempt, asked whole
    usage_of, with_usage, add_usage, tokens
                  usage, whatever the format calls its fields
    relay         relaying an upstream stream event by event

Chat completions is `formats/chat.py`; a second endpoint (`/v1/responses`) is one more
module implementing this and one line in `router.proxy.app.ROUTED`. A contract test
class (`tests/router/proxy/formats/format_contract.py`) checks any adapter.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

from router.answer_formats import AnswerFormat
from router.proxy.contexts import ContextRef
from router.proxy.routing import RouteDecision
from router.store.base import ContextRecord
from router.upstream import UpstreamStream

# Body fields a decision replaces (opaque to the pipeline: it hands them from rewrite to outgoing).
Rewrite = Mapping[str, Any]
# (status, error code, usage) of a stream, settled once just before its last event leaves.
Settle = Callable[[int, str | None, Any], None]


class Parsed(Protocol):
    """The little every format's parsed request shows the pipeline."""

    @property
    def raw(self) -> bytes: ...  # the client's bytes, forwarded as they are when nothing changes

    @property
    def stream(self) -> bool: ...

    @property
    def model(self) -> Any: ...  # as the client named it: None, "sleeptime" or an upstream's

    @property
    def context_name(self) -> str | None: ...  # a context named inside the body


P = TypeVar("P", bound=Parsed)


@dataclass(frozen=True)
class Outgoing:
    body: bytes
    strip_usage: bool = False  # the proxy asked for stream usage the client did not


@dataclass(frozen=True)
class Answer:
    """What an upstream's whole answer says, for serving it again as a stream."""

    text: str
    model: str | None


class Relay(Protocol):
    """An upstream stream on its way to the client; `settled` once its record is written."""

    settled: bool
    usage: Any

    def events(self) -> AsyncGenerator[bytes, None]: ...

    def outcome(self) -> tuple[int, str | None]: ...

    async def aclose(self) -> None: ...


class FormatAdapter(Protocol[P]):
    upstream_path: str  # where the upstream takes this format, e.g. "/chat/completions"

    def parse(self, raw: bytes) -> P: ...

    def identify(self, request: P, name: str | None) -> tuple[ContextRef | None, str]: ...

    def unroutable(
        self, request: P, context: ContextRecord | None, formats: frozenset[str] | None
    ) -> str | None: ...

    def rewrite(
        self, request: P, decision: RouteDecision, context: ContextRecord | None
    ) -> Rewrite: ...

    def lowers_budget(self, request: P, rewrite: Rewrite) -> bool: ...

    def outgoing(
        self, request: P, rewrite: Rewrite, *, model: str | None, stream_usage: bool
    ) -> Outgoing: ...

    def completion(self, request_id: str, model: str, text: str) -> dict[str, Any]: ...

    def events(
        self, request: P, request_id: str, model: str, text: str, usage: Any = None
    ) -> list[bytes]: ...

    def estimate_usage(self, text: str) -> dict[str, Any]: ...

    def not_streamed(self, body: bytes) -> bytes: ...

    def final_answer(self, completion: dict[str, Any], answer: AnswerFormat) -> str | None: ...

    def cut_short(self, completion: dict[str, Any]) -> bool: ...

    def answer_of(self, completion: dict[str, Any]) -> Answer: ...

    def usage_of(self, completion: dict[str, Any]) -> Any: ...

    def with_usage(self, completion: dict[str, Any], usage: Any) -> dict[str, Any]: ...

    def add_usage(self, *usages: Any) -> dict[str, Any]: ...

    def tokens(self, usage: Any) -> tuple[int, int, int]: ...

    def relay(
        self, upstream: UpstreamStream, *, strip_usage: bool, before_done: Settle, spent_before: Any
    ) -> Relay: ...
