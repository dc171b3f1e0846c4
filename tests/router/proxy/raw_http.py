"""Raw sockets for the slow-client tests: half-sent requests, silent peers, trickled bodies."""

from __future__ import annotations

import json
import socket
import time
from typing import Any

from router.proxy.server import ServerThread

KEY = "Bearer sk-limits-test"


def connect(server: ServerThread) -> socket.socket:
    return socket.create_connection((server.host, server.port), timeout=10)


def head(method: str, path: str, **headers: str) -> bytes:
    lines = [f"{method} {path} HTTP/1.1", "Host: proxy", f"Authorization: {KEY}"]
    lines += [f"{name.replace('_', '-')}: {value}" for name, value in headers.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def read_until_closed(sock: socket.socket, timeout_s: float) -> tuple[bytes, float]:
    """(everything the server sent, seconds until it closed); raises if it stays open."""
    started = time.monotonic()
    sock.settimeout(timeout_s)
    data = b""
    try:
        while chunk := sock.recv(65536):
            data += chunk
    except ConnectionResetError:
        pass
    return data, time.monotonic() - started


def status_of(response: bytes) -> int:
    return int(response.split(b" ", 2)[1]) if response else 0


def header_of(response: bytes, name: str) -> str | None:
    top = response.split(b"\r\n\r\n", 1)[0].decode("latin-1").split("\r\n")[1:]
    values = [line.split(":", 1)[1].strip() for line in top if ":" in line]
    names = [line.split(":", 1)[0].strip().lower() for line in top if ":" in line]
    return dict(zip(names, values, strict=True)).get(name.lower())


def error_of(response: bytes) -> dict[str, Any]:
    """The OpenAI-shaped error of a response read off a socket (chunked or not)."""
    body = response.split(b"\r\n\r\n", 1)[1]
    if header_of(response, "transfer-encoding") == "chunked":
        size, _, rest = body.partition(b"\r\n")
        body = rest[: int(size, 16)]
    error = json.loads(body)["error"]
    assert set(error) == {"message", "type", "param", "code"} and error["message"]
    return error
