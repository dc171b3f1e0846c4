"""Open the configured upstream: a URL from settings, or the embedded model.

Every command that talks to an LLM goes through here, so "no upstream
configured" always means the same thing: start the local llama.cpp server for
the duration of the `with` block and stop it afterwards.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from router.errors import ConfigError
from router.local_server import start_local_server
from router.settings import Settings
from router.upstream import OpenAIBackend, RetryPolicy


@dataclass(frozen=True)
class Upstream:
    backend: OpenAIBackend
    model: str
    base_url: str
    local: bool


@contextlib.contextmanager
def open_upstream(
    settings: Settings, *, on_status: Callable[[str], None] = print
) -> Iterator[Upstream]:
    retry = RetryPolicy(max_retries=settings.upstream_max_retries)
    with contextlib.ExitStack() as stack:
        if settings.uses_local_model:
            server = stack.enter_context(start_local_server(settings, on_status=on_status))
            base_url, key, model = server.base_url, None, server.model
        else:
            base_url, key, model = settings.upstream_url, settings.upstream_key or None, ""
        backend = OpenAIBackend(base_url, key, timeout_s=settings.upstream_timeout_s, retry=retry)
        stack.callback(backend.close)
        model = model or settings.upstream_model or _first_model(backend, base_url)
        yield Upstream(backend, model, base_url, settings.uses_local_model)


def _first_model(backend: OpenAIBackend, base_url: str) -> str:
    models = backend.models()
    if not models:
        raise ConfigError(f"{base_url} lists no models: set upstream_model")
    return models[0]
