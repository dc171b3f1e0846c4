"""Where `bench replay` keeps its work, so a killed replay resumes instead of starting over.

A live replay is an hour of model time. Its work folder holds, per arm, the proxy's
store (the policy arm's sleep-time work lives there, so a context slept on is not slept
on again) and a JSON-lines file of every query the client got back, one line written and
fsynced per answer. A rerun with the same inputs asks only what is missing; a torn last
line (a kill mid-write) is skipped, and that query asked again. A folder written for
other inputs is refused rather than mixed in.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
import threading
from collections.abc import Iterator
from dataclasses import asdict, fields
from pathlib import Path
from typing import Any, Generic, TypeVar

RUN = "replay.json"

T = TypeVar("T")


class WorkMismatch(ValueError):
    """The work folder holds a replay of other inputs."""


class Progress(Generic[T]):
    """Append-only answers of one arm; `load` gives back those a killed run had finished."""

    def __init__(self, path: Path, row: type[T]) -> None:
        self.path, self.row = path, row
        self._lock = threading.Lock()

    def load(self) -> dict[tuple[str, str], T]:
        if not self.path.exists():
            return {}
        names = {f.name for f in fields(self.row)}  # type: ignore[arg-type]
        done: dict[tuple[str, str], T] = {}
        for line in self.path.read_text().splitlines():
            try:
                data = json.loads(line)
                item = self.row(**{k: v for k, v in data.items() if k in names})
            except (json.JSONDecodeError, TypeError, AttributeError):
                continue  # a torn line: that query is asked again
            done[(data["context"], data["query"])] = item
        return done

    def add(self, item: T) -> T:
        line = json.dumps(asdict(item)) + "\n"  # type: ignore[call-overload]
        with self._lock, self.path.open("a") as out:
            out.write(line)
            out.flush()
            os.fsync(out.fileno())
        return item


@contextlib.contextmanager
def work_folder(path: Path | None, inputs: dict[str, Any]) -> Iterator[Path]:
    """`path` None: a temporary folder, gone afterwards. Otherwise kept, and checked to
    hold nothing but a replay of these same inputs."""
    if path is None:
        with tempfile.TemporaryDirectory(prefix="replay-") as tmp:
            yield Path(tmp)
        return
    path.mkdir(parents=True, exist_ok=True)
    run = path / RUN
    if run.exists():
        known = json.loads(run.read_text())
        if known != inputs:
            changed = sorted(
                k for k in inputs.keys() | known.keys() if known.get(k) != inputs.get(k)
            )
            raise WorkMismatch(
                f"{path} holds a replay of other inputs ({', '.join(changed)} differ): "
                "give another --work folder, or delete this one to start over"
            )
    else:
        run.write_text(json.dumps(inputs, indent=2, sort_keys=True) + "\n")
    yield path
