"""A made-up request format, nothing like chat's, to show the pipeline is format-neutral.

A toy request is `{"prompt", "background"?, "topic"?, "model"?, "stream"?}`; the toy
upstream answers `{"output", "model", "usage": {"in", "out"}}`, and streams
`data: {"delta"}` events ended by `data: {"done": true, "usage"}`.
"""

from __future__ import annotations

import json
from collections.abc import AsyncGenerator
from dataclasses import dataclass
from typing import Any

from router.ladder import rung
from router.proxy import contexts, routable
from router.proxy.api_errors import bad_request
from router.proxy.bodies import load_object
from router.proxy.contexts import ContextRef
from router.proxy.formats.adapter import Answer, Outgoing, Rewrite, Settle
from router.proxy.routing import RouteDecision
from router.store.base import ContextRecord
from router.upstream import UpstreamStream


@dataclass(frozen=True)
class ToyRequest:
    raw: bytes
    body: dict[str, Any]
    stream: bool
    model: Any
    context_name: str | None


def toy_event(data: dict[str, Any]) -> bytes:
    return b"data: " + json.dumps(data).encode() + b"\n\n"


class ToyRelay:
    def __init__(self, upstream: UpstreamStream, before_done: Settle) -> None:
        self.upstream, self.before_done = upstream, before_done
        self.settled, self.usage, self.status = False, None, 499

    async def events(self) -> AsyncGenerator[bytes, None]:
        async for event in self.upstream.events():
            data = json.loads(event.removeprefix(b"data: "))
            if data.get("done"):
                self.usage, self.status = data.get("usage"), 200
                self._settle()
            yield event
        if not self.settled:
            self.status = 502
            self._settle()
            yield toy_event({"error": "cut short"})

    def _settle(self) -> None:
        self.settled = True
        self.before_done(self.status, None if self.status == 200 else "cut", self.usage)

    def outcome(self) -> tuple[int, str | None]:
        return self.status, None

    async def aclose(self) -> None:
        await self.upstream.aclose()


class ToyFormat:
    upstream_path = "/toy"

    def parse(self, raw: bytes) -> ToyRequest:
        body = load_object(raw)
        if not isinstance(body.get("prompt"), str):
            raise bad_request("'prompt' must be a string", param="prompt")
        return ToyRequest(raw, body, bool(body.get("stream")), body.get("model"), body.get("topic"))

    def identify(self, request: ToyRequest, name: str | None) -> tuple[ContextRef | None, str]:
        background, query = request.body.get("background"), request.body["prompt"]
        before = [{"role": "system", "content": background}] if background else []
        return contexts.identify([*before, {"role": "user", "content": query}], name)

    def unroutable(
        self, request: ToyRequest, context: ContextRecord | None, formats: frozenset[str] | None
    ) -> str | None:
        return "tools" if "tools" in request.body else routable.context_reason(context, formats)

    def rewrite(
        self, request: ToyRequest, decision: RouteDecision, context: ContextRecord | None
    ) -> Rewrite:
        changes: dict[str, Any] = {}
        if decision.route == "enriched" and context is not None:
            changes["background"] = f"{request.body.get('background')}\nNotes: {context.learned}"
        if decision.rung and decision.route == "enriched":
            changes["limit"] = rung(decision.rung).max_tokens
        return changes

    def lowers_budget(self, request: ToyRequest, rewrite: Rewrite) -> bool:
        given = request.body.get("limit")
        return "limit" in rewrite and (not given or rewrite["limit"] < given)

    def outgoing(
        self, request: ToyRequest, rewrite: Rewrite, *, model: str | None, stream_usage: bool
    ) -> Outgoing:
        changes = {**({"model": model} if model else {}), **rewrite}
        if not changes and "topic" not in request.body:
            return Outgoing(request.raw)
        body = {k: v for k, v in {**request.body, **changes}.items() if k != "topic"}
        return Outgoing(json.dumps(body).encode())

    def completion(self, request_id: str, model: str, text: str) -> dict[str, Any]:
        usage = self.estimate_usage(text)
        return {"id": request_id, "model": model, "output": text, "usage": usage}

    def events(
        self, request: ToyRequest, request_id: str, model: str, text: str, usage: Any = None
    ) -> list[bytes]:
        done = {"done": True, "usage": usage or self.estimate_usage(text)}
        return [toy_event({"delta": text}), toy_event(done)]

    def estimate_usage(self, text: str) -> dict[str, Any]:
        return {"in": 0, "out": len(text.split())}

    def not_streamed(self, body: bytes) -> bytes:
        return json.dumps({**json.loads(body), "stream": False}).encode()

    def final_answer(self, completion: dict[str, Any], answer: Any) -> str | None:
        try:
            return answer.extract(str(completion["output"]).split()[-1], True)
        except (KeyError, IndexError):
            return None

    def cut_short(self, completion: dict[str, Any]) -> bool:
        return completion.get("stopped") == "limit"

    def answer_of(self, completion: dict[str, Any]) -> Answer:
        return Answer(completion["output"], completion.get("model"))

    def usage_of(self, completion: dict[str, Any]) -> Any:
        return completion.get("usage")

    def with_usage(self, completion: dict[str, Any], usage: Any) -> dict[str, Any]:
        return {**completion, "usage": usage}

    def add_usage(self, *usages: Any) -> dict[str, Any]:
        counts = [self.tokens(u) for u in usages]
        return {"in": sum(c[0] for c in counts), "out": sum(c[1] for c in counts)}

    def tokens(self, usage: Any) -> tuple[int, int, int]:
        if not isinstance(usage, dict):
            return 0, 0, 0
        return usage.get("in", 0), usage.get("out", 0), 0

    def relay(
        self, upstream: UpstreamStream, *, strip_usage: bool, before_done: Settle, spent_before: Any
    ) -> ToyRelay:
        return ToyRelay(upstream, before_done)
