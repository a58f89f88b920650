"""Prometheus metrics: what SREs' SLA panels read. Names follow Prometheus conventions."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from hotfix_operator.core.followup import FollowupDecision
from hotfix_operator.core.model import Status

_DURATION_BUCKETS = (5, 15, 30, 60, 120, 300, 600, 900, 1200, 1800, 2700, 3600, 7200)


class Metrics:
    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        self.transitions = Counter("hotfix_phase_transitions_total", "HotfixRelease phase transitions, by new phase",
                                   ["phase"], registry=self.registry)
        self.outcomes = Counter("hotfix_releases_total", "Finished HotfixReleases, by outcome", ["outcome"],
                                registry=self.registry)
        self.time_to_production = Histogram(
            "hotfix_time_to_production_seconds", "From creation to traffic on the hotfix (the SLA clock)",
            buckets=_DURATION_BUCKETS, registry=self.registry)
        self.approval_to_production = Histogram(
            "hotfix_approval_to_production_seconds", "From approval to traffic on the hotfix (the operator's share)",
            buckets=_DURATION_BUCKETS, registry=self.registry)
        self.followup_steps = Counter("hotfix_followup_steps_total",
                                      "Follow-up steps after promotion (tag, release, backport, post-mortem), "
                                      "by step and result (ok, transient, permanent)", ["step", "result"],
                                      registry=self.registry)
        self.postmortems_overdue = Counter("hotfix_postmortems_overdue_total",
                                           "Hotfixes whose post-mortem missed its deadline (an issue was opened)",
                                           registry=self.registry)
        self.admission_policy_installed = Gauge(
            "hotfix_admission_policy_installed", "1 when the shipped admission policy and binding are installed "
            "unaltered; 0 stops every approval (kubectl apply -f crds/admission.yaml)", registry=self.registry)
        self.reconcile_errors = Counter("hotfix_reconcile_errors_total", "Reconciles that raised and were retried",
                                        registry=self.registry)

    def record(self, before: Status, after: Status) -> None:
        if after.phase is not None and after.phase != before.phase:
            self.transitions.labels(phase=after.phase.value).inc()
            if after.phase.terminal:
                self.outcomes.labels(outcome=after.phase.value).inc()
        ts = after.timestamps
        # traffic reached the hotfix when the EndpointSlices were seen on green, not when it was decided
        if ts.promoted and before.timestamps.promoted is None:
            if ts.created:
                self.time_to_production.observe((ts.promoted - ts.created).total_seconds())
            if ts.approved:
                self.approval_to_production.observe((ts.promoted - ts.approved).total_seconds())

    def record_followup(self, decision: FollowupDecision) -> None:
        if decision.step is None:
            return
        failure = decision.failure
        result = "ok" if failure is None else "transient" if failure.transient else "permanent"
        self.followup_steps.labels(step=decision.step.value, result=result).inc()
        if decision.overdue_opened:
            self.postmortems_overdue.inc()
