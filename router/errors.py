"""sleeptime's own exception tree.

Library exceptions (openai, xllamacpp, sqlite, ...) are caught by class in the
one adapter that imports the library and translated once into these types, so
callers and the proxy's error bodies never depend on a third-party SDK. An
UpstreamError's message is written for the client that reads it ("cannot connect to
the upstream (connection refused)"), never a library's repr.

    SleeptimeError
    ├── ConfigError            bad settings or settings file
    ├── ModelFileError         a model part package is missing or the joined file's hash is wrong
    ├── LocalServerError       the embedded llama.cpp server did not start or died
    ├── DatasetError           a dataset line is malformed (carries the line number)
    ├── InputError             a file or folder named on the command line is missing or wrong
    └── UpstreamError          anything that went wrong talking to the LLM upstream
        ├── UpstreamConnectionError   could not connect (refused, DNS, reset)
        ├── UpstreamTimeout           no (complete) answer by the call's deadline
        ├── UpstreamRateLimited       429 after all retries
        ├── UpstreamServerError       5xx after all retries
        ├── UpstreamRejected          4xx other than 429: the request itself is wrong
        └── UpstreamBadResponse       a body that is not a valid chat completion
"""

from __future__ import annotations


class SleeptimeError(Exception):
    """Base of every error sleeptime raises on purpose."""


class ConfigError(SleeptimeError):
    pass


class ModelFileError(SleeptimeError):
    pass


class LocalServerError(SleeptimeError):
    pass


class DatasetError(SleeptimeError):
    def __init__(self, message: str, *, line: int | None = None) -> None:
        super().__init__(f"line {line}: {message}" if line is not None else message)
        self.line = line


class InputError(SleeptimeError):
    """A path the user gave is missing or is not what the command reads (one line to print)."""


class UpstreamError(SleeptimeError):
    """`status` is the HTTP status the proxy answers with; `code` the OpenAI-style error code."""

    status: int = 502
    code: str = "upstream_error"

    def __init__(self, message: str, *, upstream_status: int | None = None) -> None:
        super().__init__(message)
        self.upstream_status = upstream_status


class UpstreamConnectionError(UpstreamError):
    code = "upstream_unreachable"


class UpstreamTimeout(UpstreamError):
    status = 504
    code = "upstream_timeout"


class UpstreamRateLimited(UpstreamError):
    status = 429
    code = "upstream_rate_limited"

    def __init__(self, message: str, *, retry_after: float | None = None) -> None:
        super().__init__(message, upstream_status=429)
        self.retry_after = retry_after


class UpstreamServerError(UpstreamError):
    code = "upstream_server_error"


class UpstreamRejected(UpstreamError):
    status = 400
    code = "upstream_rejected"

    def __init__(self, message: str, *, upstream_status: int) -> None:
        super().__init__(message, upstream_status=upstream_status)
        self.status = upstream_status


class UpstreamBadResponse(UpstreamError):
    code = "upstream_bad_response"
