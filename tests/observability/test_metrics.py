"""The metrics follow the status: one reconcile's old and new Status in, counters, histograms and the
fleet gauges out, with no per-release label except on the SLA countdown."""

from __future__ import annotations

import datetime
from typing import Any

import pytest
from prometheus_client import CollectorRegistry

from hotfix_operator.api import AUDIT_LIMIT, Phase
from hotfix_operator.core.followup import Failure, FollowupDecision
from hotfix_operator.core.followup_steps import Step
from hotfix_operator.core.model import Status
from hotfix_operator.metrics import Metrics

pytestmark = pytest.mark.unit
T0 = datetime.datetime(2026, 3, 1, 12, 0, tzinfo=datetime.UTC)
NS = "shop"


def at(seconds: float) -> str:
    return (T0 + datetime.timedelta(seconds=seconds)).isoformat()


def status(phase: Phase, audit: list[tuple[float, str]], **extra: Any) -> Status:
    body: dict[str, Any] = {"phase": phase.value, "audit": [{"time": at(t), "actor": "hotfix-operator", "action": a}
                                                            for t, a in audit], **extra}
    return Status.model_validate(body)


def cond(type_: str, value: str, reason: str) -> dict[str, str]:
    return {"type": type_, "status": value, "reason": reason, "lastTransitionTime": at(0)}


@pytest.fixture
def metrics() -> Metrics:
    return Metrics(CollectorRegistry(), clock=lambda: T0 + datetime.timedelta(seconds=600))


def value(m: Metrics, name: str, **labels: str) -> float | None:
    return m.registry.get_sample_value(name, labels)


PENDING = [(0, "Pending")]
PROMOTED = [*PENDING, (2, "Verifying"), (5, "AwaitingApproval"), (65, "Deploying"), (95, "Promoted")]


def test_a_reconcile_through_several_phases_counts_each_and_times_the_ones_it_left(metrics: Metrics) -> None:
    before = status(Phase.PENDING, PENDING)
    after = status(Phase.AWAITING_APPROVAL, [*PENDING, (2, "Verifying"), (5, "AwaitingApproval")])
    metrics.record(before, after, NS, "hf")
    assert value(metrics, "hotfix_phase_transitions_total", namespace=NS, phase="Verifying") == 1
    assert value(metrics, "hotfix_phase_transitions_total", namespace=NS, phase="AwaitingApproval") == 1
    assert value(metrics, "hotfix_phase_duration_seconds_sum", phase="Pending") == 2
    assert value(metrics, "hotfix_phase_duration_seconds_sum", phase="Verifying") == 3
    assert value(metrics, "hotfix_active_releases", namespace=NS, phase="AwaitingApproval") == 1
    assert value(metrics, "hotfix_active_releases", namespace=NS, phase="Pending") == 0
    # the same status again (a requeue) changes nothing
    metrics.record(after, after, NS, "hf")
    assert value(metrics, "hotfix_phase_transitions_total", namespace=NS, phase="Verifying") == 1


def test_a_phase_entered_as_the_oldest_audit_entries_are_trimmed_is_counted_once(metrics: Metrics) -> None:
    """At api.AUDIT_LIMIT the lifecycle drops the oldest entries as it appends: the new ones are no longer a
    suffix of the old trail, and only they count."""
    old = [(float(i), "ProbePassed") for i in range(AUDIT_LIMIT - 1)]
    before = status(Phase.PROMOTED, [(0, "Promoted"), *old])
    after = status(Phase.SUCCEEDED, [*old, (600, "ProbePassed"), (601, "Succeeded")][-AUDIT_LIMIT:])
    metrics.record(before, after, NS, "hf")
    assert value(metrics, "hotfix_phase_transitions_total", namespace=NS, phase="Succeeded") == 1
    assert not value(metrics, "hotfix_phase_transitions_total", namespace=NS, phase="Promoted")
    assert value(metrics, "hotfix_releases_total", namespace=NS, outcome="Succeeded") == 1


def test_time_to_production_approval_wait_and_the_sla_countdown(metrics: Metrics) -> None:
    deadline = {"slaDeadline": at(1800)}
    waiting = status(Phase.AWAITING_APPROVAL, PROMOTED[:3], timestamps={"created": at(0), "verified": at(5)},
                     **deadline)
    metrics.record(waiting, waiting, NS, "hf")
    # the clock says T0+600: 1200 s left while traffic is not on the hotfix
    assert value(metrics, "hotfix_sla_remaining_seconds", namespace=NS, release="hf") == 1200
    promoted = status(Phase.PROMOTED, PROMOTED, timestamps={"created": at(0), "verified": at(5),
                                                            "approved": at(65), "promoted": at(95)}, **deadline)
    metrics.record(waiting, promoted, NS, "hf")
    assert value(metrics, "hotfix_approval_wait_seconds_sum", namespace=NS) == 60
    assert value(metrics, "hotfix_time_to_production_seconds_sum", namespace=NS) == 95
    assert value(metrics, "hotfix_time_to_production_seconds_bucket", namespace=NS, le="120.0") == 1
    assert value(metrics, "hotfix_approval_to_production_seconds_sum", namespace=NS) == 30
    assert value(metrics, "hotfix_sla_remaining_seconds", namespace=NS, release="hf") is None


def test_breach_rollback_and_outcome(metrics: Metrics) -> None:
    before = status(Phase.DEPLOYING, PROMOTED[:4])
    rolling = status(Phase.ROLLING_BACK, [*PROMOTED[:4], (700, "RollingBack")],
                     conditions=[cond("SLABreached", "True", "SLABreached"),
                                 cond("RolledBack", "False", "ProgressDeadlineExceeded")])
    metrics.record(before, rolling, NS, "hf")
    metrics.record(rolling, rolling, NS, "hf")
    assert value(metrics, "hotfix_sla_breaches_total", namespace=NS) == 1
    assert value(metrics, "hotfix_rollbacks_total", namespace=NS, reason="ProgressDeadlineExceeded") == 1
    done = status(Phase.ROLLED_BACK, [*PROMOTED[:4], (700, "RollingBack"), (710, "RolledBack")])
    metrics.record(rolling, done, NS, "hf")
    assert value(metrics, "hotfix_releases_total", namespace=NS, outcome="RolledBack") == 1
    assert value(metrics, "hotfix_phase_duration_seconds_sum", phase="RollingBack") == 10
    assert value(metrics, "hotfix_active_releases", namespace=NS, phase="RollingBack") == 0


def test_provenance_results_are_counted_once_per_outcome_and_per_retry(metrics: Metrics) -> None:
    verifying = status(Phase.VERIFYING, PENDING)
    outage = status(Phase.VERIFYING, PENDING, verifyAttempts=1,
                    conditions=[cond("ProvenanceVerified", "Unknown", "RegistryUnavailable")])
    metrics.record(verifying, outage, NS, "hf")
    metrics.record(outage, outage, NS, "hf")
    refused = status(Phase.REJECTED, [*PENDING, (9, "Rejected")], verifyAttempts=1,
                     conditions=[cond("ProvenanceVerified", "False", "SignatureInvalid")])
    metrics.record(outage, refused, NS, "hf")
    assert value(metrics, "hotfix_provenance_verifications_total", result="retry", reason="RegistryUnavailable") == 1
    assert value(metrics, "hotfix_provenance_verifications_total", result="refused", reason="SignatureInvalid") == 1


def test_overdue_postmortems_gauge_and_followup_failures(metrics: Metrics) -> None:
    done = status(Phase.SUCCEEDED, [*PROMOTED, (200, "Succeeded")],
                  conditions=[cond("PostmortemOverdue", "True", "Overdue")])
    metrics.record(done, done, NS, "hf")
    assert value(metrics, "hotfix_postmortems_overdue", namespace=NS) == 1
    failed = FollowupDecision(status=done, step=Step.TAG, failure=Failure(transient=True, reason="RateLimited",
                                                                          message="slow down"))
    metrics.record_followup(failed)
    assert value(metrics, "hotfix_followup_steps_total", step=Step.TAG.value, result="transient") == 1
    assert value(metrics, "hotfix_followup_step_failures_total", step=Step.TAG.value, reason="RateLimited") == 1


def test_the_per_namespace_families_expose_what_prometheus_clients_own_would_and_cost_far_less() -> None:
    """The families with a namespace label keep plain numbers (metrics._Counts, _Histograms): scraped, they
    read exactly as prometheus_client's Counter and Histogram with the same observations (bar the optional
    `_created` series), while a namespace's series cost a few hundred bytes, not tens of kilobytes."""
    import tracemalloc

    from prometheus_client import Counter, Histogram, generate_latest

    from hotfix_operator.metrics import _Counts, _Histograms

    buckets = (5.0, 15.0, 30.0, 60.0)
    ours_registry, theirs_registry = CollectorRegistry(), CollectorRegistry()
    ours_c = _Counts("demo_total", "a counter", ["namespace", "phase"], ours_registry)
    ours_h = _Histograms("demo_seconds", "a histogram", ["namespace"], buckets, ours_registry)
    theirs_c = Counter("demo_total", "a counter", ["namespace", "phase"], registry=theirs_registry)
    theirs_h = Histogram("demo_seconds", "a histogram", ["namespace"], buckets=buckets, registry=theirs_registry)
    for ns in ("a", "b"):
        for counter in (ours_c, theirs_c):
            counter.labels(namespace=ns, phase="Pending")  # created at 0
            counter.labels(namespace=ns, phase="Succeeded").inc()
        for histogram in (ours_h, theirs_h):
            for value in (0.5, 5.0, 5.1, 60.0, 61.0):  # each side of a bound, on one, past the last
                histogram.labels(namespace=ns).observe(value)

    def exposed(registry: CollectorRegistry) -> list[str]:
        return sorted(line for line in generate_latest(registry).decode().splitlines()
                      if "_created" not in line)

    assert exposed(ours_registry) == exposed(theirs_registry)
    assert ours_registry.get_sample_value("demo_seconds_bucket", {"namespace": "a", "le": "5.0"}) == 2

    def cost(make: Any) -> int:
        registry = CollectorRegistry()
        tracemalloc.start()
        families = make(registry)
        for i in range(50):
            families[0].labels(namespace=f"ns-{i}", phase="Pending")
            families[1].labels(namespace=f"ns-{i}")
        used = tracemalloc.get_traced_memory()[0]
        tracemalloc.stop()
        return used

    ours = cost(lambda r: (_Counts("c_total", "c", ["namespace", "phase"], r),
                           _Histograms("h_seconds", "h", ["namespace"], buckets, r)))
    theirs = cost(lambda r: (Counter("c_total", "c", ["namespace", "phase"], registry=r),
                             Histogram("h_seconds", "h", ["namespace"], buckets=buckets, registry=r)))
    assert ours * 4 < theirs, (ours, theirs)
