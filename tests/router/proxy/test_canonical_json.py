"""The one reading of a body: what it refuses, and that it reads ordinary JSON as json does."""

from __future__ import annotations

import json

import pytest

from router.proxy.canonical_json import NotCanonical, deeper_than, encodable, loads

CHAT = {"model": "m", "messages": [{"role": "user", "content": "hi é ✓"}], "n": 1}


def nested(depth: int) -> bytes:
    return b"[" * (depth - 1) + b"{}" + b"]" * (depth - 1)


def test_ordinary_json_reads_as_json_does() -> None:
    raw = json.dumps(CHAT, ensure_ascii=False).encode()
    assert loads(raw, 64) == json.loads(raw) == CHAT
    assert loads(b'{"emoji": "\\ud83d\\ude00"}', 64) == {"emoji": "\U0001f600"}


REFUSED = {
    "BOM": b"\xef\xbb\xbf" + json.dumps(CHAT).encode(),
    "UTF-16 with BOM": json.dumps(CHAT).encode("utf-16"),
    "UTF-16 without BOM": json.dumps(CHAT).encode("utf-16-le"),
    "UTF-32": json.dumps(CHAT).encode("utf-32"),
    "invalid UTF-8": b'{"a": "\xff"}',
    "encoded surrogate": b'{"a": "\xed\xa0\x80"}',
    "escaped lone surrogate": b'{"a": "\\ud800"}',
    "escaped lone surrogate in a key": b'{"\\uDC00": 1}',
    "duplicate key": b'{"messages": [], "messages": [{"role": "user", "content": "x"}]}',
    "duplicate key deep": b'{"a": [{"b": {"c": 1, "c": 2}}]}',
    "NaN": b'{"t": NaN}',
    "Infinity": b'{"t": -Infinity}',
    "nested past the limit": nested(65),
    "nested past the C stack": nested(2000),
    "trailing garbage": b'{"a": 1} x',
}


@pytest.mark.parametrize("name", REFUSED)
def test_refused(name: str) -> None:
    with pytest.raises(NotCanonical):
        loads(REFUSED[name], 64)


def test_refusals_name_the_reason() -> None:
    with pytest.raises(NotCanonical, match="'c' twice"):
        loads(REFUSED["duplicate key deep"], 64)
    with pytest.raises(NotCanonical, match="deeper than 64"):
        loads(nested(2000), 64)


def test_nesting_at_the_limit_is_read() -> None:
    assert deeper_than(loads(nested(64), 64), 63)
    assert not deeper_than(json.loads(nested(64)), 64)


def test_brackets_inside_strings_are_not_nesting() -> None:
    raw = json.dumps({"text": "[" * 500}).encode()
    assert loads(raw, 2) == {"text": "[" * 500}


def test_depth_counts_objects_and_arrays() -> None:
    assert not deeper_than({"a": [1, {"b": 2}]}, 3)
    assert deeper_than({"a": [1, {"b": [2]}]}, 3)
    assert not deeper_than("text", 0) and not deeper_than([], 1)


def test_encodable() -> None:
    assert encodable({"k": ["v", {"w": "\U0001f600"}]})
    assert not encodable({"k": ["v", {"w": "\ud800"}]})
    assert not encodable({"\udfff": 1})
