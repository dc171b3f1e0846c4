"""Per-key limits: one API key cannot take every connection to the upstream.

Each tenant (one API key) may have `max_inflight` chat requests in flight;
the next one is refused at once with 429 and `Retry-After`, before its body is
read, so a flood from one key costs neither memory nor upstream capacity and
the other keys are served as before. The count lives in the event loop's
thread: no lock, one dict operation per request.
"""

from __future__ import annotations

from router.proxy.api_errors import ApiError

RETRY_AFTER_S = 1


class KeyLimits:
    def __init__(self, max_inflight: int) -> None:
        if max_inflight < 1:
            raise ValueError("max_inflight_per_key must be at least 1")
        self.max_inflight = max_inflight
        self.refused = 0
        self._inflight: dict[str, int] = {}

    def enter(self, tenant: str) -> bool:
        count = self._inflight.get(tenant, 0)
        if count >= self.max_inflight:
            self.refused += 1
            return False
        self._inflight[tenant] = count + 1
        return True

    def leave(self, tenant: str) -> None:
        count = self._inflight.get(tenant, 0) - 1
        if count > 0:
            self._inflight[tenant] = count
        else:
            self._inflight.pop(tenant, None)

    def inflight(self, tenant: str) -> int:
        return self._inflight.get(tenant, 0)

    def refusal(self) -> ApiError:
        message = (
            f"too many concurrent requests for this API key (at most {self.max_inflight}); "
            f"retry after {RETRY_AFTER_S} s"
        )
        return ApiError(
            429,
            message,
            type="rate_limit_error",
            code="too_many_concurrent_requests",
            headers={"Retry-After": str(RETRY_AFTER_S)},
        )
