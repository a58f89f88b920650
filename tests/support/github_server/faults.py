"""Failures tests schedule on purpose: GitHub's rate limits and server errors, per endpoint."""

from __future__ import annotations

import threading
from dataclasses import dataclass

from . import representations
from .validation import ApiResponse

SECONDARY_RATE_LIMIT_MESSAGE = (
    "You have exceeded a secondary rate limit. Please wait a few minutes before you try again. "
    "If you reach out to GitHub Support for help, please include the request ID."
)
SECONDARY_RATE_LIMIT_DOCS = (
    "https://docs.github.com/rest/overview/rate-limits-for-the-rest-api#about-secondary-rate-limits"
)


@dataclass
class Fault:
    method: str
    template: str
    status: int
    remaining: int
    let_through: int
    retry_after: int | None
    after_handling: bool

    def response(self) -> ApiResponse:
        headers: dict[str, str] = {}
        if self.retry_after is not None:
            headers["Retry-After"] = str(self.retry_after)
        if self.status in (403, 429):
            payload = representations.error(SECONDARY_RATE_LIMIT_MESSAGE, SECONDARY_RATE_LIMIT_DOCS)
        else:
            payload = representations.error("Server Error")
        return ApiResponse.json(self.status, payload, headers)


class FaultPlan:
    """Scheduled faults, consumed in order by the requests they match."""

    def __init__(self) -> None:
        self._faults: list[Fault] = []
        self._lock = threading.Lock()

    def add(self, fault: Fault) -> None:
        with self._lock:
            self._faults.append(fault)

    def take(self, method: str, template: str, after_handling: bool) -> Fault | None:
        """The fault this request must suffer at this point, if any (and counts it used)."""
        with self._lock:
            for fault in self._faults:
                if fault.method != method or fault.template != template:
                    continue
                if fault.after_handling != after_handling:
                    continue
                if fault.let_through > 0:
                    fault.let_through -= 1
                    return None
                fault.remaining -= 1
                if fault.remaining <= 0:
                    self._faults.remove(fault)
                return fault
            return None

    def pending(self) -> list[Fault]:
        with self._lock:
            return list(self._faults)
