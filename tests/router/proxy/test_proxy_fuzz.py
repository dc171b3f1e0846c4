"""Schemathesis against the proxy's own OpenAPI schema, over real HTTP: no input is a 5xx.

Every operation gets valid and invalid bodies, headers and path parameters
(positive and negative generation), with the upstream healthy, so a 5xx could
only come from the proxy itself. Each answer must also be well-formed: JSON
errors in OpenAI's shape. `FUZZ_EXAMPLES` raises the count per operation and
mode for a longer run:

    FUZZ_EXAMPLES=1000 .venv/bin/python -m pytest -s tests/router/proxy/test_proxy_fuzz.py
"""

from __future__ import annotations

import json
import os
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import hypothesis
import pytest
import schemathesis
from fake_upstream import FakeUpstream, healthy
from schemathesis.generation import GenerationMode

from router.local_server import free_port
from router.proxy.app import create_app
from router.proxy.config import ProxyConfig
from router.proxy.server import ServerThread
from router.settings import Settings

EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "60"))
TRIED: Counter[str] = Counter()
MASTER = "sk-master-fuzz"  # every case carries it, so the fuzzer reaches past the gate


@pytest.fixture(scope="module")
def proxy(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerThread]:
    home: Path = tmp_path_factory.mktemp("fuzz")
    with FakeUpstream(fallback=healthy) as fake:
        settings = Settings(
            cache_dir=home, upstream_url=fake.url, upstream_model="m", master_key=MASTER
        )
        config = ProxyConfig.from_settings(settings, sleep_enabled=False, max_body_bytes=1 << 16)
        app = create_app(config)
        with ServerThread(app, free_port()) as server:
            yield server
    print(f"\nfuzz: {sum(TRIED.values())} inputs tried ({dict(TRIED)}); 0 server errors")


def operations(proxy: ServerThread) -> list[Any]:
    root = proxy.url.removesuffix("/v1")
    schema = schemathesis.openapi.from_url(f"{root}/openapi.json")
    schema.config.update(base_url=root)
    return [result.ok() for result in schema.get_all_operations()]


@pytest.mark.timeout(600)
@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE])
def test_no_input_is_a_server_error(proxy: ServerThread, mode: GenerationMode) -> None:
    found = operations(proxy)
    assert {f"{op.method.upper()} {op.path}" for op in found} >= {
        "POST /v1/chat/completions",
        "POST /v1/contexts",
        "POST /v1/feedback",
        "GET /v1/contexts/{context_id}",
    }
    for operation in found:
        if mode is GenerationMode.NEGATIVE and operation.method.upper() == "GET":
            continue  # no body, and any string is a valid id: nothing to get wrong
        run_cases(operation, mode)


def run_cases(operation: Any, mode: GenerationMode) -> None:
    @hypothesis.settings(
        max_examples=EXAMPLES,
        deadline=None,
        database=None,
        derandomize=True,
        suppress_health_check=list(hypothesis.HealthCheck),
        phases=[hypothesis.Phase.generate],
    )
    @hypothesis.given(operation.as_strategy(generation_mode=mode))
    def check(case: Any) -> None:
        response = case.call(headers={"Authorization": f"Bearer {MASTER}"})
        TRIED[f"{mode.value} {case.method} {case.path}"] += 1
        assert response.status_code < 500, (case.body, response.text)
        if response.status_code >= 400:
            error = json.loads(response.content)["error"]
            assert set(error) == {"message", "type", "param", "code"} and error["message"]

    check()
