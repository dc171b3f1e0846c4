"""Which context a request's messages belong to, and what its query is (any format whose
input is a list of role/content messages; `/v1/contexts` registers them the same way).

The query is the last user message; the context is every message before it.
A client names its context explicitly (header `X-Sleeptime-Context` or
`metadata.sleeptime_context`); otherwise the context is identified by a hash
of its messages, normalized so that reformatting (whitespace, line endings)
does not make a new context while a change of role or wording does. Messages
after the last user message (a prefill, tool results) belong to neither.
"""

from __future__ import annotations

import functools
import hashlib
import json
import re
from dataclasses import dataclass
from typing import Any

from router.proxy.api_errors import bad_request
from router.store.base import Source

HEADER = "x-sleeptime-context"
ID_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:\-]{0,127}")
HASH_CHARS = 16  # 64 bits, and always scoped to one tenant


@dataclass(frozen=True)
class ContextRef:
    """A context as one request shows it; `text` is computed only when someone needs it."""

    context_id: str
    source: Source
    messages: tuple[dict[str, Any], ...]

    @functools.cached_property
    def text(self) -> str:
        return context_text(list(self.messages))


def identify(messages: list[dict[str, Any]], name: str | None) -> tuple[ContextRef | None, str]:
    """(context, query); no context when nothing precedes the query and none is named."""
    before, query = split(messages)
    if name is not None:
        return ContextRef(name, "explicit", tuple(before)), query
    if not before:
        return None, query
    return ContextRef(context_hash(before), "implicit", tuple(before)), query


def explicit_name(header: str | None, metadata_name: str | None) -> str | None:
    """The header wins over metadata."""
    if header is not None:
        return check_id(header, HEADER)
    if metadata_name is not None:
        return check_id(metadata_name, "metadata")
    return None


def check_id(name: str, param: str) -> str:
    """Ids travel back in a response header, so they are short and plain."""
    if not ID_PATTERN.fullmatch(name):
        raise bad_request(
            "a context id is 1-128 characters of letters, digits and . _ : - "
            "(starting with a letter or digit)",
            param=param,
            code="invalid_context_id",
        )
    return name


def split(messages: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], str]:
    for index in range(len(messages) - 1, -1, -1):
        if messages[index].get("role") == "user":
            return messages[:index], message_text(messages[index])
    return [], ""


def context_hash(messages: list[dict[str, Any]]) -> str:
    normal = "\x1e".join(f"{m.get('role')}\x1f{_collapse(message_text(m))}" for m in messages)
    return hashlib.sha256(normal.encode("utf-8", "surrogatepass")).hexdigest()[:HASH_CHARS]


def context_text(messages: list[dict[str, Any]]) -> str:
    """What sleep-time compute reads: one message as it is, several with their roles."""
    if len(messages) == 1:
        return clean(message_text(messages[0]))
    return clean("\n\n".join(f"{m.get('role')}: {message_text(m)}" for m in messages))


def message_text(message: dict[str, Any]) -> str:
    content = message.get("content")
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(_part_text(part) for part in content if isinstance(part, dict))
    return ""


def clean(text: str) -> str:
    """JSON may carry lone surrogates; UTF-8 stores (and upstreams) cannot."""
    return text.encode("utf-8", "replace").decode("utf-8")


def _part_text(part: dict[str, Any]) -> str:
    """Text parts by their text; others (images, audio) by their content, so they hash."""
    if part.get("type") == "text" and isinstance(part.get("text"), str):
        return part["text"]
    return json.dumps(part, sort_keys=True)


def _collapse(text: str) -> str:
    return " ".join(text.split())
