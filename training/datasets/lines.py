"""JSON Lines reading shared by every loader: 1-based line numbers in every error.

A dataset error that does not say which line is useless on a 7,000-line file,
so the number travels with each row from the moment it is read.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from importlib.resources import files
from importlib.resources.abc import Traversable
from pathlib import Path
from typing import Any

from router.errors import DatasetError

Source = Path | Traversable


def bundled(name: str) -> Traversable:
    """A file shipped inside the package (never a path outside it)."""
    return files("training") / "data" / "gsm8k" / name


def iter_lines(source: Source) -> Iterator[tuple[int, bytes]]:
    """(1-based line number, raw line) for every non-blank line."""
    try:
        handle = source.open("rb")
    except OSError as exc:
        raise DatasetError(f"cannot read {source}: {exc}") from exc
    with handle:
        for number, raw in enumerate(handle, start=1):
            if raw.strip():
                yield number, raw


def decode(raw: bytes, number: int) -> dict[str, Any]:
    """One line as a JSON object, decoded here (bad UTF-8 included) so that every
    fault names its line and a lenient loader can go on to the next."""
    try:
        row = json.loads(raw.decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise DatasetError(f"not UTF-8: {exc.reason}", line=number) from exc
    except json.JSONDecodeError as exc:
        raise DatasetError(f"invalid JSON: {exc.msg} (column {exc.colno})", line=number) from exc
    if not isinstance(row, dict):
        raise DatasetError(f"a JSON {type(row).__name__}, expected an object", line=number)
    return row


def require(row: dict[str, Any], key: str, kind: type | tuple[type, ...], line: int) -> Any:
    """row[key], insisting on its type; bool never passes for a number."""
    if key not in row:
        raise DatasetError(f"missing field {key!r}", line=line)
    value = row[key]
    if isinstance(value, bool) or not isinstance(value, kind):
        raise DatasetError(f"field {key!r} has type {type(value).__name__}", line=line)
    return value
