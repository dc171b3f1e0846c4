"""The layout's rules, checked on the source: imports flow one way, each SDK has one adapter,
no module grows into two ideas. A rule broken here is broken by construction, whatever the
behaviour tests say."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("policies", "router", "training")
# SDK -> the modules (or a package, ending in /) allowed to import it.
ADAPTERS = {
    "openai": {"router/upstream/sdk.py", "training/bench/live_replay.py"},  # ours, the client's
    "aiohttp": {"router/upstream/http.py"},
    "fastapi": {"router/proxy/"},
    "starlette": {"router/proxy/"},
    "uvicorn": {"router/proxy/server.py", "router/proxy/protocol.py"},  # serving, its limits
    "prometheus_client": {"router/proxy/prometheus.py"},
    "sentence_transformers": {"router/embeddings.py"},
    "sklearn": {"router/predictability.py"},
    "xllamacpp": {"router/llama_server.py"},
    "mlflow": {"training/tracking.py"},
    "optuna": {"training/search.py"},
    "psycopg": {"router/store/postgres"},  # postgres.py and its postgres_*.py parts
    "psycopg_pool": {"router/store/postgres.py"},
    "matplotlib": {"training/plots.py"},
}
MAX_LINES = 400


def modules() -> list[Path]:
    return sorted(p for package in PACKAGES for p in (ROOT / package).rglob("*.py"))


def imported(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module)
    return names


def relative(path: Path) -> str:
    return path.relative_to(ROOT).as_posix()


@pytest.mark.parametrize("package", ["router", "policies"])
def test_the_online_path_imports_nothing_of_training(package: str) -> None:
    offenders = [
        relative(p)
        for p in (ROOT / package).rglob("*.py")
        if any(n.split(".")[0] == "training" for n in imported(p))
    ]
    assert offenders == []


def test_each_sdk_is_imported_by_its_adapter_only() -> None:
    for path in modules():
        where = relative(path)
        for name in imported(path):
            allowed = ADAPTERS.get(name.split(".")[0])
            if allowed is not None:
                assert any(where == a or where.startswith(a) for a in allowed if a), (where, name)


def test_no_module_is_two_ideas() -> None:
    long = {relative(p): n for p in modules() if (n := len(p.read_text().splitlines())) > MAX_LINES}
    assert long == {}


def test_no_two_modules_share_a_name_within_a_package() -> None:
    """`metrics` meant three things once; a name now says one thing per package."""
    for package in PACKAGES:
        names = [p.stem for p in (ROOT / package).rglob("*.py") if p.stem != "__init__"]
        assert len(names) == len(set(names)), sorted(n for n in names if names.count(n) > 1)
