"""Every call sleeptime makes to an OpenAI-compatible upstream, behind one seam.

    retry.py    the one retry policy, status table and Retry-After rule (pure)
    results.py  what a call returns, and the token estimate (pure)
    sdk.py      OpenAIBackend: the openai SDK, for the sleep-time worker and offline work
    http.py     Forwarder: raw bytes over aiohttp, for the proxy's hot path

The two clients are imported on first use of their names, not with this package:
aiohttp is an optional dependency (`serve`), and the proxy's hot path must not pay
for loading the openai SDK. Importing `router.upstream.http` loads no `openai`.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from router.upstream.results import (
    ChatResult,
    StreamDelta,
    Usage,
    estimate_prompt_tokens,
    estimate_tokens,
)
from router.upstream.retry import DEFAULT_RETRY, RETRYABLE, RetryPolicy

if TYPE_CHECKING:
    from router.upstream.http import DONE_EVENT, Forwarded, Forwarder, UpstreamStream
    from router.upstream.sdk import NO_KEY, OpenAIBackend

_LAZY = {
    "NO_KEY": "sdk",
    "OpenAIBackend": "sdk",
    "DONE_EVENT": "http",
    "Forwarded": "http",
    "Forwarder": "http",
    "UpstreamStream": "http",
}

__all__ = [
    "DEFAULT_RETRY",
    "DONE_EVENT",
    "NO_KEY",
    "RETRYABLE",
    "ChatResult",
    "Forwarded",
    "Forwarder",
    "OpenAIBackend",
    "RetryPolicy",
    "StreamDelta",
    "UpstreamStream",
    "Usage",
    "estimate_prompt_tokens",
    "estimate_tokens",
]


def __getattr__(name: str) -> Any:
    """PEP 562: `from router.upstream import Forwarder` loads http.py only then."""
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{module}"), name)
