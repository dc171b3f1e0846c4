"""Every error the proxy answers, in OpenAI's shape, translated once here.

    {"error": {"message": str, "type": str, "param": str | null, "code": str | null}}

`ApiError` is what handlers raise for bad input; `from_upstream` maps
`router.errors.UpstreamError` (already translated from aiohttp and the openai
SDK by `router.upstream`, with a message written for the client, never a
library's repr) to the status its class names: 502 unreachable or 5xx, 504
timeout, 429 with Retry-After, an upstream 4xx with its own status and
message. The same body goes into an SSE error event when a stream breaks.
A client that left before its answer is recorded as 499 (`client_wait`).
"""

from __future__ import annotations

import json
import math

from fastapi.responses import Response

from router.errors import UpstreamError, UpstreamRateLimited

INVALID = "invalid_request_error"


class ApiError(Exception):
    def __init__(
        self,
        status: int,
        message: str,
        *,
        type: str = INVALID,
        code: str | None = None,
        param: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.type = type
        self.code = code
        self.param = param
        self.headers = headers or {}

    def body(self) -> bytes:
        error = {"message": self.message, "type": self.type, "param": self.param, "code": self.code}
        return json.dumps({"error": error}).encode()

    def response(self, headers: dict[str, str] | None = None) -> Response:
        return Response(
            self.body(),
            self.status,
            headers={**self.headers, **(headers or {})},
            media_type="application/json",
        )


def bad_request(message: str, *, param: str | None = None, code: str = "invalid_value") -> ApiError:
    return ApiError(400, message, param=param, code=code)


def from_upstream(error: UpstreamError) -> ApiError:
    if isinstance(error, UpstreamRateLimited):
        headers = {}
        if error.retry_after is not None:
            headers["Retry-After"] = str(max(1, math.ceil(error.retry_after)))
        return ApiError(429, str(error), type="rate_limit_error", code=error.code, headers=headers)
    kind = INVALID if 400 <= error.status < 500 else "upstream_error"
    return ApiError(error.status, str(error), type=kind, code=error.code)


def sse_error_event(error: ApiError) -> bytes:
    """What a stream that broke after its first byte ends with (before `data: [DONE]`)."""
    return b"data: " + error.body() + b"\n\n"
