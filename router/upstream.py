"""The one adapter over the `openai` SDK: chat with any OpenAI-compatible upstream.

OpenAI, vLLM, llama.cpp's server and LiteLLM all speak the same HTTP API, so one
backend serves them all given a base URL (including its `/v1`) and a key.

Retries are ours, not the SDK's (`max_retries=0`): connection errors, timeouts,
429 and 5xx are retried with exponential backoff, honouring Retry-After on 429
and 503, and the injected `sleep` lets tests assert the delays without waiting.
Every SDK exception is translated here, once, into `router.errors`:

    APITimeoutError (connect or read)     -> UpstreamTimeout        retried
    APIConnectionError                    -> UpstreamConnectionError retried
    429                                   -> UpstreamRateLimited     retried
    5xx, or an error event in a stream    -> UpstreamServerError     retried
    other 4xx                             -> UpstreamRejected        at once
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
import math
import random
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from typing import Any, Self, TypeVar

import openai

from router.errors import (
    UpstreamBadResponse,
    UpstreamConnectionError,
    UpstreamError,
    UpstreamRateLimited,
    UpstreamRejected,
    UpstreamServerError,
    UpstreamTimeout,
)

NO_KEY = "sleeptime-no-key"
_BODY_ERRORS = (json.JSONDecodeError, UnicodeDecodeError)  # the SDK lets these through
_SDK_ERRORS = (openai.OpenAIError, *_BODY_ERRORS)
_RETRYABLE = (UpstreamConnectionError, UpstreamTimeout, UpstreamRateLimited, UpstreamServerError)
T = TypeVar("T")


@dataclass(frozen=True)
class Usage:
    prompt_tokens: int
    completion_tokens: int
    cached_prompt_tokens: int = 0
    estimated: bool = False  # True when the upstream sent no usage and we estimated it


@dataclass(frozen=True)
class ChatResult:
    """`text` is the first choice's; with n > 1, `usage` still counts every choice."""

    text: str
    finish_reason: str | None
    usage: Usage
    latency_s: float  # as the caller lived it: retries and backoff included
    model: str


@dataclass(frozen=True)
class StreamDelta:
    """Content deltas carry only text; the last event carries finish_reason and usage."""

    text: str
    finish_reason: str | None = None
    usage: Usage | None = None


@dataclass(frozen=True)
class RetryPolicy:
    """`jitter` is the fraction of each backoff drawn at random (0 makes it exact)."""

    max_retries: int = 3
    backoff_base_s: float = 0.5
    backoff_max_s: float = 8.0
    jitter: float = 0.5

    def delay_s(self, attempt: int, retry_after: float | None = None) -> float:
        """Retry-After wins when the upstream sent one; the cap keeps a hostile value bounded."""
        if retry_after is not None:
            return min(max(retry_after, 0.0), self.backoff_max_s)
        ceiling = min(self.backoff_max_s, self.backoff_base_s * 2.0 ** min(attempt, 32))
        return ceiling * (1.0 - self.jitter * random.random())


class OpenAIBackend:
    """One SDK client per backend: its connection pool is shared by every call and thread."""

    def __init__(
        self,
        base_url: str,
        api_key: str | None = None,
        *,
        timeout_s: float = 120.0,
        retry: RetryPolicy = RetryPolicy(),
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.base_url = base_url
        self.retry = retry
        self._sleep = sleep
        self._client = openai.OpenAI(
            base_url=base_url, api_key=api_key or NO_KEY, timeout=timeout_s, max_retries=0
        )

    def chat(self, messages: list[dict], *, model: str, **params: Any) -> ChatResult:
        kwargs = _request(messages, model, params, stream=False)
        started = time.monotonic()
        completion = self._with_retries(lambda: self._client.chat.completions.create(**kwargs))
        return _chat_result(completion, messages, model, time.monotonic() - started)

    def stream(self, messages: list[dict], *, model: str, **params: Any) -> Iterator[StreamDelta]:
        """Iterate it to the end or close() it: that is what gives the connection back."""
        kwargs = _request(messages, model, params, stream=True)
        sdk_stream, chunks = self._with_retries(lambda: self._open_stream(kwargs))
        return _relay(sdk_stream, chunks, messages)

    def models(self) -> list[str]:
        page = self._with_retries(self._client.models.list)
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

    def _open_stream(self, kwargs: dict[str, Any]) -> tuple[openai.Stream[Any], Iterator[Any]]:
        """Reads the first chunk too, so a stream that fails at once is retried like a call."""
        sdk_stream = self._client.chat.completions.create(**kwargs)
        chunks = iter(sdk_stream)
        try:
            first = list(itertools.islice(chunks, 1))
        except BaseException:
            sdk_stream.close()
            raise
        return sdk_stream, itertools.chain(first, chunks)

    def _with_retries(self, call: Callable[[], T]) -> T:
        attempt = 0
        while True:
            try:
                return call()
            except _SDK_ERRORS as exc:
                error = _translate(exc)
                if attempt >= self.retry.max_retries or not isinstance(error, _RETRYABLE):
                    raise error from exc
                wait = self.retry.delay_s(attempt, _retry_after(exc))
            self._sleep(wait)
            attempt += 1


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


def _translate(exc: Exception) -> UpstreamError:
    if isinstance(exc, openai.APITimeoutError):
        return UpstreamTimeout("upstream did not answer in time")
    if isinstance(exc, openai.APIConnectionError):
        return UpstreamConnectionError(f"cannot reach upstream: {exc.__cause__ or exc}")
    if isinstance(exc, openai.APIStatusError):
        return _from_status(exc)
    if isinstance(exc, (openai.APIResponseValidationError, *_BODY_ERRORS)):
        return UpstreamBadResponse(f"upstream sent an invalid body: {exc}")
    if isinstance(exc, openai.APIError):
        return UpstreamServerError(f"upstream reported an error: {exc.message}")
    return UpstreamError(f"upstream call failed: {exc}")


def _from_status(exc: openai.APIStatusError) -> UpstreamError:
    status, message = exc.status_code, _upstream_message(exc)
    if status < 400:  # a redirect or informational status the SDK would not follow
        return UpstreamBadResponse(f"upstream answered {status}: {message}")
    if status == 429:
        return UpstreamRateLimited(message, retry_after=_retry_after(exc))
    if status >= 500:
        return UpstreamServerError(message, upstream_status=status)
    return UpstreamRejected(message, upstream_status=status)


def _upstream_message(exc: openai.APIStatusError) -> str:
    """The upstream's own words (the SDK already unwrapped {"error": ...}), else the SDK's."""
    body = exc.body
    if isinstance(body, Mapping) and isinstance(body.get("message"), str):
        return body["message"]
    if isinstance(body, str) and body.strip():
        return f"upstream answered {exc.status_code}: {body.strip()[:500]}"
    return exc.message


def _retry_after(exc: Exception) -> float | None:
    """Seconds the upstream asked us to wait, from a number or an HTTP date; only 429 and 503."""
    if not isinstance(exc, openai.APIStatusError) or exc.status_code not in (429, 503):
        return None
    value = exc.response.headers.get("retry-after", "")
    try:
        return max(float(value), 0.0)
    except ValueError:
        pass
    try:
        return max(parsedate_to_datetime(value).timestamp() - time.time(), 0.0)
    except (TypeError, ValueError):  # absent or unreadable: back off on our own schedule
        return None


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
    except _SDK_ERRORS as exc:
        error = _translate(exc)
        if isinstance(error, UpstreamConnectionError):
            error = UpstreamBadResponse(f"stream cut after {len(pieces)} deltas: {error}")
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
    """Upstream counts when present; otherwise an estimate flagged as such (see below)."""
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


def estimate_tokens(text: str) -> int:
    """About four characters per token for English and code with BPE tokenizers."""
    return math.ceil(len(text) / 4)


def estimate_prompt_tokens(messages: list[dict]) -> int:
    """Text of every message plus 4 tokens each for the chat template's role markers."""
    return sum(estimate_tokens(_message_text(m)) + 4 for m in messages)


def _message_text(message: Mapping[str, Any]) -> str:
    content = message.get("content")
    if isinstance(content, str):
        return content
    if isinstance(content, list):  # content parts: only text parts count
        return "".join(p.get("text", "") for p in content if isinstance(p, Mapping))
    return ""
