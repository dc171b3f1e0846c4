"""The one adapter over the `openai` SDK: chat with any OpenAI-compatible upstream.

OpenAI, vLLM, llama.cpp's server and LiteLLM all speak the same HTTP API, so one
backend serves them all given a base URL (including its `/v1`) and a key. The
sleep-time worker, `collect` and the offline LLM cache use it; the proxy's hot
path uses `http.Forwarder` instead (raw bytes, no parsing into objects).

Retries are ours, not the SDK's (`max_retries=0`), so there is one loop and it
follows `retry.RetryPolicy` within one deadline per call (`retry.Budget`: each try's
timeout is the time left); the injected `sleep` lets tests assert the delays
without waiting. Every SDK exception is translated here, once, through the
shared table in `retry`, plus what only a parsing client can meet:

    APITimeoutError (connect or read)     -> UpstreamTimeout         retried
    APIConnectionError                    -> UpstreamConnectionError retried
    APIStatusError                        -> `retry.status_error` (429 and 5xx retried)
    an error event in a stream            -> UpstreamServerError     retried
    invalid JSON, no choices, bad shape   -> UpstreamBadResponse     at once

Streams: the request is sent and the first chunk read when `stream()` is called,
so upstream errors surface before a caller commits to a streamed response, and
only up to that point are they retried. After it, a stall longer than the read
timeout raises UpstreamTimeout; any other break (connection reset, a chunked
body cut short, a stream that ends without a finish_reason) raises
UpstreamBadResponse, because what the caller got is an incomplete answer.
"""

from __future__ import annotations

import itertools
import json
import time
from collections.abc import Callable, Iterator
from functools import partial
from typing import Any, Self, TypeVar

import openai

from router.errors import (
    UpstreamBadResponse,
    UpstreamConnectionError,
    UpstreamError,
    UpstreamServerError,
    UpstreamTimeout,
)
from router.upstream.results import (
    ChatResult,
    StreamDelta,
    Usage,
    estimate_prompt_tokens,
    estimate_tokens,
)
from router.upstream.retry import (
    DEFAULT_RETRY,
    Budget,
    RetryPolicy,
    retry_after_s,
    status_error,
    transport_error,
)

NO_KEY = "sleeptime-no-key"
_BODY_ERRORS = (json.JSONDecodeError, UnicodeDecodeError)  # the SDK lets these through
_SDK_ERRORS = (openai.OpenAIError, *_BODY_ERRORS)
T = TypeVar("T")


class OpenAIBackend:
    """One SDK client per backend: its connection pool is shared by every call and thread."""

    def __init__(
        self,
        base_url: str,
        api_key: str | None = None,
        *,
        timeout_s: float = 120.0,
        retry: RetryPolicy = DEFAULT_RETRY,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.base_url = base_url
        self.timeout_s = timeout_s
        self.retry = retry
        self._sleep = sleep
        self._client = openai.OpenAI(
            base_url=base_url, api_key=api_key or NO_KEY, timeout=timeout_s, max_retries=0
        )

    def chat(
        self, messages: list[dict], *, model: str, deadline: float | None = None, **params: Any
    ) -> ChatResult:
        """`deadline`: a `time.monotonic()` reading that bounds every try and wait together."""
        kwargs = _request(messages, model, params, stream=False)
        started = time.monotonic()
        create = partial(self._client.chat.completions.create, **kwargs)
        completion = self._with_retries(lambda left: create(timeout=left), deadline)
        return _chat_result(completion, messages, model, time.monotonic() - started)

    def stream(
        self, messages: list[dict], *, model: str, deadline: float | None = None, **params: Any
    ) -> Iterator[StreamDelta]:
        """Iterate it to the end or close() it: that is what gives the connection back. The
        deadline bounds the wait for the first chunk; a later stall, what was left of it then."""
        kwargs = _request(messages, model, params, stream=True)
        sdk_stream, chunks = self._with_retries(
            lambda left: self._open_stream(kwargs, left), deadline
        )
        return _relay(sdk_stream, chunks, messages)

    def models(self) -> list[str]:
        page = self._with_retries(lambda left: self._client.models.list(timeout=left), None)
        data = getattr(page, "data", None)
        if not isinstance(data, list):
            raise UpstreamBadResponse("upstream model list has no data")
        return [m.id for m in data if isinstance(getattr(m, "id", None), str)]

    def close(self) -> None:
        self._client.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _open_stream(
        self, kwargs: dict[str, Any], left_s: float
    ) -> tuple[openai.Stream[Any], Iterator[Any]]:
        """Reads the first chunk too, so a stream that fails at once is retried like a call."""
        sdk_stream = self._client.chat.completions.create(**kwargs, timeout=left_s)
        chunks = iter(sdk_stream)
        try:
            first = list(itertools.islice(chunks, 1))
        except BaseException:
            sdk_stream.close()
            raise
        return sdk_stream, itertools.chain(first, chunks)

    def _with_retries(self, call: Callable[[float], T], deadline: float | None) -> T:
        """`call(seconds left)` is one try; it must give up when they have passed."""
        if deadline is None:
            deadline = time.monotonic() + self.timeout_s
        budget = Budget(self.retry, deadline)
        while True:
            left = budget.left_s()
            if left <= 0:
                raise budget.timed_out()
            try:
                return call(left)
            except _SDK_ERRORS as exc:
                error = _translate(exc, budget.total_s)
                wait = budget.wait_s(error, _retry_after(exc))
                if wait is None:
                    raise error from exc
            self._sleep(wait)


def _request(
    messages: list[dict], model: str, params: dict[str, Any], stream: bool
) -> dict[str, Any]:
    """Caller params go as extra_body so any field an upstream knows (top_k, chat_template_kwargs,
    reasoning_effort) reaches it unchanged, whatever this SDK version declares."""
    body = {k: v for k, v in params.items() if k not in ("stream", "stream_options")}
    kwargs: dict[str, Any] = {
        "messages": messages,
        "model": model,
        "stream": stream,
        "extra_body": body,
    }
    if stream:
        kwargs["stream_options"] = {**(params.get("stream_options") or {}), "include_usage": True}
    return kwargs


def _translate(exc: Exception, within_s: float | None = None) -> UpstreamError:
    if isinstance(exc, openai.APITimeoutError):  # before its base class, APIConnectionError
        return transport_error(exc.__cause__ or exc, timed_out=True, within_s=within_s)
    if isinstance(exc, openai.APIConnectionError):
        return transport_error(exc.__cause__ or exc, timed_out=False)
    if isinstance(exc, openai.APIStatusError):
        return status_error(exc.status_code, _content(exc), _retry_after(exc))
    if isinstance(exc, (openai.APIResponseValidationError, *_BODY_ERRORS)):
        return UpstreamBadResponse(f"the upstream sent an invalid body: {exc}")
    if isinstance(exc, openai.APIError):
        return UpstreamServerError(f"the upstream reported an error: {exc.message}")
    return UpstreamError(f"the upstream call failed: {exc}")


def _content(exc: openai.APIStatusError) -> bytes:
    """The raw error body, so the shared table reads the upstream's words as the proxy does.

    The SDK reads it before raising; RuntimeError is httpx's ResponseNotRead, for a
    response closed before it was read, which leaves only the status to report."""
    try:
        return exc.response.content
    except RuntimeError:
        return b""


def _retry_after(exc: Exception) -> float | None:
    if not isinstance(exc, openai.APIStatusError):
        return None
    return retry_after_s(exc.status_code, exc.response.headers)


def _chat_result(
    completion: object, messages: list[dict], model: str, latency_s: float
) -> ChatResult:
    """Reads defensively: the SDK builds models without validation, so any shape can arrive."""
    choices = getattr(completion, "choices", None)
    if not isinstance(choices, list) or not choices:
        raise UpstreamBadResponse("upstream answer has no choices")
    message = getattr(choices[0], "message", None)
    text = getattr(message, "content", None) or ""
    if message is None or not isinstance(text, str):
        raise UpstreamBadResponse("upstream answer has no message")
    answered_by = getattr(completion, "model", None)
    return ChatResult(
        text,
        _finish_reason(choices[0]),
        _usage(getattr(completion, "usage", None), messages, text),
        latency_s,
        answered_by if isinstance(answered_by, str) else model,
    )


def _relay(
    sdk_stream: openai.Stream[Any], chunks: Iterator[Any], messages: list[dict]
) -> Iterator[StreamDelta]:
    pieces: list[str] = []
    finish_reason, raw_usage = None, None
    with sdk_stream:
        for chunk in _guarded(chunks, pieces):
            raw_usage = getattr(chunk, "usage", None) or raw_usage
            choice = _first_choice(chunk)
            finish_reason = _finish_reason(choice) or finish_reason
            text = getattr(getattr(choice, "delta", None), "content", None)
            if isinstance(text, str) and text:
                pieces.append(text)
                yield StreamDelta(text)
    if finish_reason is None:
        raise UpstreamBadResponse(
            f"stream ended without a finish_reason after {len(pieces)} "
            "deltas: the answer is incomplete"
        )
    yield StreamDelta("", finish_reason, _usage(raw_usage, messages, "".join(pieces)))


def _guarded(chunks: Iterator[Any], pieces: list[str]) -> Iterator[Any]:
    """Past the first chunk a broken connection means a half answer, so it is a bad response."""
    try:
        yield from chunks
    except openai.APITimeoutError as exc:
        message = f"the upstream stalled after {len(pieces)} deltas in the middle of a stream"
        raise UpstreamTimeout(message) from exc
    except _SDK_ERRORS as exc:
        error = _translate(exc)
        if isinstance(error, UpstreamConnectionError):
            error = UpstreamBadResponse(f"the stream was cut after {len(pieces)} deltas ({error})")
        raise error from exc


def _first_choice(chunk: object) -> object:
    """Only choice 0 is relayed: interleaving n > 1 choices would garble the text."""
    choices = getattr(chunk, "choices", None)
    if not isinstance(choices, list):
        return None
    return next((c for c in choices if getattr(c, "index", 0) == 0), None)


def _finish_reason(choice: object) -> str | None:
    reason = getattr(choice, "finish_reason", None)
    return reason if isinstance(reason, str) else None


def _usage(raw: object, messages: list[dict], text: str) -> Usage:
    """Upstream counts when present; otherwise an estimate flagged as such (see results)."""
    prompt = getattr(raw, "prompt_tokens", None)
    completion = getattr(raw, "completion_tokens", None)
    details = getattr(raw, "prompt_tokens_details", None)
    cached = getattr(details, "cached_tokens", None)
    cached = cached if isinstance(cached, int) else 0
    if isinstance(prompt, int) and isinstance(completion, int):
        return Usage(prompt, completion, cached)
    return Usage(
        prompt if isinstance(prompt, int) else estimate_prompt_tokens(messages),
        completion if isinstance(completion, int) else estimate_tokens(text),
        cached,
        estimated=True,
    )
