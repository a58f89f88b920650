"""Health checks as typed data: what a check asks (spec.checks, and the HotfixPolicy's own checks) and
how far it got (status.checks). The logic that runs them lives in core.checks. Pure."""

from __future__ import annotations

import datetime
from typing import Literal

from pydantic import Field, model_validator

from hotfix_operator.api import CheckPhase, CheckStage
from hotfix_operator.core.base import Camel

Comparison = Literal["==", "!=", "<", "<=", ">", ">="]


class BodyCondition(Camel):
    """A condition on an HTTP answer's body: a JSONPath (the `$.a.b[0]` subset) compared with a value,
    or a regular expression the body must contain a match of."""

    json_path: str | None = None
    op: Comparison = "=="
    # compared as a number when the body's value is one, as true/false for a boolean, else as text
    value: str | None = None
    regex: str | None = None


class HttpProvider(Camel):
    method: Literal["GET", "HEAD", "POST"] = "GET"
    url: str
    expected_status: tuple[int, ...] = (200,)
    body: BodyCondition | None = None
    # the name of a header set the HotfixPolicy defines (its values come from a Secret the policy names)
    headers_from: str | None = None


class PrometheusProvider(Camel):
    # the name of a Prometheus the HotfixPolicy names: the requester never chooses the address
    address: str
    query: str
    min: float | None = None
    max: float | None = None


class WebhookProvider(Camel):
    url: str
    # how long a gate answer (202 Accepted) may hold the check before it fails
    max_hold_seconds: int = 600


class KubernetesProvider(Camel):
    """Green's pods: at most this many container restarts, none in CrashLoopBackOff, none not ready."""

    max_restarts: int = 0


class CheckSpec(Camel):
    name: str
    http: HttpProvider | None = None
    prometheus: PrometheusProvider | None = None
    webhook: WebhookProvider | None = None
    kubernetes: KubernetesProvider | None = None
    interval_seconds: int = 5
    # how many measurements, or for how long; neither: one measurement
    count: int | None = None
    duration_seconds: int | None = None
    initial_delay_seconds: int = 0
    # failures tolerated (a measurement that answered, wrongly); one more fails the check
    failure_limit: int = 0
    # errors in a row tolerated (could not evaluate: timeout, refused, no series); one more is an Error
    consecutive_error_limit: int = 4
    timeout_seconds: int = 5

    @model_validator(mode="after")
    def _one_provider(self) -> CheckSpec:
        given = [p for p in (self.http, self.prometheus, self.webhook, self.kubernetes) if p is not None]
        if len(given) != 1:
            raise ValueError(f"check {self.name}: give exactly one of http, prometheus, webhook or kubernetes")
        return self

    @property
    def provider(self) -> str:
        return next(n for n in ("http", "prometheus", "webhook", "kubernetes") if getattr(self, n) is not None)

    @property
    def url(self) -> str | None:
        """The URL template the operator connects to (None for prometheus and kubernetes checks)."""
        if self.http is not None:
            return self.http.url
        return self.webhook.url if self.webhook is not None else None


class Checks(Camel):
    pre_promotion: tuple[CheckSpec, ...] = ()
    post_promotion: tuple[CheckSpec, ...] = ()

    def of(self, stage: CheckStage) -> tuple[CheckSpec, ...]:
        return self.pre_promotion if stage == CheckStage.PRE_PROMOTION else self.post_promotion


class HeaderRef(Camel):
    """One request header a policy's header set adds: its value is read from a Secret in the operator's
    namespace at measurement time, never stored in status."""

    header: str
    secret_name: str
    key: str


class CheckState(Camel):
    """One check of one release: its spec as fixed at Verifying, where it may connect, and its progress.
    Kept in status so a restarted operator resumes a check where it was."""

    name: str
    stage: CheckStage
    source: Literal["policy", "release"]
    spec: CheckSpec
    # host:port the egress rules allowed at Verifying; a measurement connects only there
    target: str | None = None
    # the policy names that host itself (so loopback may be reached, as tests do)
    explicit: bool = False
    # the Prometheus base URL the policy's named address resolved to
    address: str | None = None
    headers: tuple[HeaderRef, ...] = ()
    phase: CheckPhase = CheckPhase.PENDING
    measurements: int = 0
    failures: int = 0
    errors: int = 0
    consecutive_errors: int = 0
    last_value: str | None = None
    last_error: str | None = None
    message: str = ""
    started_at: datetime.datetime | None = None
    last_measured_at: datetime.datetime | None = None
    holding_since: datetime.datetime | None = None
    finished_at: datetime.datetime | None = None


class Measurement(Camel):
    """One evaluation of a check, as the shell made it. `hold` is a webhook's gate answer: not a result."""

    name: str
    stage: CheckStage
    outcome: Literal["pass", "fail", "error", "hold"]
    at: datetime.datetime
    value: str | None = None
    message: str = Field(default="", max_length=500)
