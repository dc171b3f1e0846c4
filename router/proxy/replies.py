"""Responses the pipeline builds itself, in any format: JSON and SSE bodies with the
exchange's headers, a cached answer, a checked answer that agreed."""

from __future__ import annotations

import json
from typing import Any

from fastapi.responses import Response, StreamingResponse

from router.proxy.exchange import Exchange
from router.proxy.formats.adapter import Parsed

JSON = "application/json"
SSE = "text/event-stream"


def json_response(exchange: Exchange, content: bytes, status: int = 200) -> Response:
    return Response(content, status, exchange.headers(), media_type=JSON)


def events_response(exchange: Exchange, events: list[bytes]) -> Response:
    return StreamingResponse(iter(events), headers=exchange.headers(), media_type=SSE)


def cached(exchange: Exchange, request: Parsed, answer: str) -> Response:
    """An anticipated answer, with no upstream call: the upstream wrote none of its tokens."""
    fmt, model = exchange.format, exchange.model or "sleeptime"
    exchange.completion_tokens = 0
    exchange.finish(200, usage=fmt.estimate_usage(answer))
    if request.stream:
        return events_response(exchange, fmt.events(request, exchange.request_id, model, answer))
    body = fmt.completion(exchange.request_id, model, answer)
    return json_response(exchange, json.dumps(body).encode())


def served(exchange: Exchange, request: Parsed, completion: dict[str, Any], spent: Any) -> Response:
    """An upstream's whole answer, with the usage of every call made for it; as a stream when
    the client asked for one."""
    fmt = exchange.format
    exchange.completion_tokens = exchange.finish(200, usage=spent)
    if not request.stream:
        return json_response(exchange, json.dumps(fmt.with_usage(completion, spent)).encode())
    answer = fmt.answer_of(completion)
    model = str(answer.model or exchange.model)
    events = fmt.events(request, exchange.request_id, model, answer.text, spent)
    return events_response(exchange, events)
