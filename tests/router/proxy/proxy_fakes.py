"""Shared fakes and settings for the proxy tests (fixtures are in conftest.py)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from router.proxy.config import ProxyConfig
from router.settings import Settings
from router.upstream import ChatResult, RetryPolicy, Usage

QUICK = RetryPolicy(max_retries=2, backoff_base_s=0.001, backoff_max_s=0.01, jitter=0.0)
KEY_A = "sk-tenant-a-0123456789abcdef"
KEY_B = "sk-tenant-b-fedcba9876543210"
DEFAULT_KEY = "sk-tests-default"  # what make_client's clients send unless told otherwise


class FakeSleepBackend:
    """A sync ChatBackend for the worker: scripted answers (or errors), calls kept."""

    def __init__(self) -> None:
        self.calls: list[dict[str, Any]] = []
        self.replies: list[str | Exception | ChatResult] = []

    def enqueue(self, *replies: str | Exception | ChatResult) -> FakeSleepBackend:
        self.replies.extend(replies)
        return self

    def chat(self, messages: list[dict], *, model: str, **params: Any) -> ChatResult:
        self.calls.append({"messages": messages, "model": model, **params})
        reply = self.replies.pop(0) if self.replies else SLEEP_REPLY
        if isinstance(reply, Exception):
            raise reply
        if isinstance(reply, ChatResult):
            return reply
        return ChatResult(reply, "stop", Usage(100, 40), 0.01, model)


SLEEP_REPLY = """NOTES:
- Eggs left each day: 16 - 3 - 4 = 9
QUESTIONS:
Q: How many eggs are left each day?
Work: 16 - 3 - 4 = 9
A: 9"""


def config_for(tmp_path: Path, upstream_model: str = "m", **overrides: Any) -> ProxyConfig:
    settings = Settings(
        cache_dir=tmp_path, upstream_url="http://unused/v1", upstream_model=upstream_model
    )
    return ProxyConfig.from_settings(settings, **overrides)
