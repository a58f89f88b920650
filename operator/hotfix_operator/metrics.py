"""Prometheus metrics: what SREs' SLA panels and alerts read. Each one is documented in docs/metrics.md.

Everything is derived from the old and new Status of one reconcile (`record`), so a metric can never
disagree with what `kubectl get hfr` shows. Labels stay bounded: namespace, phase, outcome, reason,
step. The only per-release label is on `hotfix_sla_remaining_seconds`, a gauge that exists only while
a release is in flight and the SLA clock runs.

Drills (spec.drill) are counted apart, in `hotfix_drills_total` and `hotfix_drill_stage_seconds` only: no
release, phase, SLA, approval, rollback or provenance series ever sees one, so the SLA panels and alerts
(charts/hotfix-operator) cannot count a rehearsal."""

from __future__ import annotations

import abc
import bisect
import datetime
import threading
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily
from prometheus_client.metrics_core import Metric
from prometheus_client.registry import Collector

from hotfix_operator.api import ConditionType, Phase
from hotfix_operator.core.followup import FollowupDecision
from hotfix_operator.core.model import AuditEntry, Status

# Seconds, from a fast automatic hotfix (about a minute) to well past the default 30-minute SLA.
_DURATION_BUCKETS = (5, 15, 30, 60, 120, 300, 600, 900, 1200, 1800, 2700, 3600, 7200)
# A reconcile is a handful of API calls; a provenance check with a registry round trip takes longer.
_RECONCILE_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)
DRILL_PHASES = (Phase.DRILL_ENDING, Phase.DRILL_PASSED, Phase.DRILL_FAILED)
ACTIVE_PHASES = tuple(p for p in Phase if not p.terminal and p not in DRILL_PHASES)


def _utcnow() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


@dataclass
class _Live:
    """What the fleet gauges need to know about one release, refreshed on every reconcile."""

    namespace: str
    name: str
    phase: Phase | None
    sla_deadline: datetime.datetime | None
    postmortem_overdue: bool

    @property
    def sla_clock_runs(self) -> bool:
        # the SLA is about traffic on the hotfix; it stops once the switch was seen, or the release ended
        return self.sla_deadline is not None and self.phase is not None and not self.phase.terminal


class _Fleet(Collector):
    """Gauges over every release this operator reconciled since it started, computed at scrape time
    (so seconds remaining tick down between reconciles). After a restart every release is reconciled
    once by its Kopf daemon, which refills this."""

    def __init__(self, clock: Callable[[], datetime.datetime]) -> None:
        self.clock = clock
        self.releases: dict[tuple[str, str], _Live] = {}
        self.namespaces: set[str] = set()

    def update(self, live: _Live) -> None:
        self.namespaces.add(live.namespace)
        self.releases[(live.namespace, live.name)] = live

    def collect(self) -> Iterable[GaugeMetricFamily]:
        return list(self._families())

    def _families(self) -> Iterator[GaugeMetricFamily]:
        active = GaugeMetricFamily("hotfix_active_releases", "HotfixReleases in flight, by namespace and phase",
                                   labels=["namespace", "phase"])
        counts = {(ns, p.value): 0 for ns in self.namespaces for p in ACTIVE_PHASES}
        remaining = GaugeMetricFamily(
            "hotfix_sla_remaining_seconds", "Seconds until the SLA deadline for releases whose traffic is not yet on "
            "the hotfix (negative: breached); the series disappears once traffic switched", labels=["namespace",
                                                                                                   "release"])
        overdue = GaugeMetricFamily("hotfix_postmortems_overdue", "Promoted hotfixes whose post-mortem is overdue now",
                                    labels=["namespace"])
        overdue_counts = dict.fromkeys(self.namespaces, 0)
        now = self.clock()
        for live in self.releases.values():
            if live.phase is not None and not live.phase.terminal:
                counts[(live.namespace, live.phase.value)] += 1
            if live.sla_clock_runs and live.sla_deadline is not None:
                remaining.add_metric([live.namespace, live.name], (live.sla_deadline - now).total_seconds())
            overdue_counts[live.namespace] += int(live.postmortem_overdue)
        for (ns, phase), n in sorted(counts.items()):
            active.add_metric([ns, phase], n)
        for ns, n in sorted(overdue_counts.items()):
            overdue.add_metric([ns], n)
        yield from (active, remaining, overdue)


class _Series:
    """One labelled series of a _Counts or _Histograms, as `labels(...)` returns it: `inc` on a counter,
    `observe` on a histogram."""

    __slots__ = ("add", "key")

    def __init__(self, add: Callable[[tuple[str, ...], float], None], key: tuple[str, ...]) -> None:
        self.add, self.key = add, key

    def inc(self, amount: float = 1.0) -> None:
        self.add(self.key, amount)

    def observe(self, value: float) -> None:
        self.add(self.key, value)


class _Family(Collector):
    """A labelled family kept as plain numbers, for the families with a namespace label. prometheus_client's
    children cost about a kilobyte each, with a lock per value, and every namespace gets its series at 0 when
    first seen (Metrics._touch): some 28 KB per namespace, never freed. This is a few hundred bytes."""

    def __init__(self, name: str, documentation: str, labelnames: list[str], registry: CollectorRegistry) -> None:
        self.name, self.documentation, self.labelnames = name, documentation, labelnames
        self._lock = threading.Lock()
        registry.register(self)

    def labels(self, **labels: str) -> _Series:
        """The series for these label values, created at 0 if new (as prometheus_client's `labels` does)."""
        key = tuple(labels[n] for n in self.labelnames)
        self.add(key, None)
        return _Series(self.add, key)

    @abc.abstractmethod
    def add(self, key: tuple[str, ...], value: float | None) -> None:
        """Count `value` in the series `key` (None: only make sure it exists)."""


class _Counts(_Family):
    def __init__(self, name: str, documentation: str, labelnames: list[str], registry: CollectorRegistry) -> None:
        self.values: dict[tuple[str, ...], float] = {}
        super().__init__(name, documentation, labelnames, registry)

    def add(self, key: tuple[str, ...], value: float | None) -> None:
        with self._lock:
            self.values[key] = self.values.get(key, 0.0) + (value or 0.0)

    def collect(self) -> Iterable[Metric]:
        family = CounterMetricFamily(self.name, self.documentation, labels=self.labelnames)
        with self._lock:
            for key, value in sorted(self.values.items()):
                family.add_metric(list(key), value)
        return [family]


class _Histograms(_Family):
    def __init__(self, name: str, documentation: str, labelnames: list[str], buckets: tuple[float, ...],
                 registry: CollectorRegistry) -> None:
        self.buckets = buckets
        # label values -> [count per bucket (the last one +Inf), sum]
        self.values: dict[tuple[str, ...], tuple[list[int], list[float]]] = {}
        super().__init__(name, documentation, labelnames, registry)

    def add(self, key: tuple[str, ...], value: float | None) -> None:
        with self._lock:
            counts, total = self.values.setdefault(key, ([0] * (len(self.buckets) + 1), [0.0]))
            if value is not None:
                counts[bisect.bisect_left(self.buckets, value)] += 1
                total[0] += value

    def collect(self) -> Iterable[Metric]:
        family = HistogramMetricFamily(self.name, self.documentation, labels=self.labelnames)
        bounds = (*(str(float(b)) for b in self.buckets), "+Inf")
        with self._lock:
            for key, (counts, total) in sorted(self.values.items()):
                running = 0
                cumulative = []
                for bound, n in zip(bounds, counts, strict=True):
                    running += n
                    cumulative.append((bound, float(running)))
                family.add_metric(list(key), cumulative, total[0])
        return [family]


def _phases_entered(before: Status, after: Status) -> list[AuditEntry]:
    """The phase changes of this reconcile, in order: each `enter` writes an audit entry named after the
    phase, and one reconcile may pass through several phases."""
    names = {p.value for p in Phase}
    kept = len(before.audit)
    if after.audit[:kept] == before.audit:  # appended only (the usual case): the same entries, compared by identity
        added = after.audit[kept:]
    else:  # the oldest entries were trimmed (api.AUDIT_LIMIT): hash them to find what is new
        seen = set(before.audit)
        added = tuple(e for e in after.audit if e not in seen)
    return [e for e in added if e.action in names]


def _entered_at(status: Status) -> datetime.datetime | None:
    """When the release entered its current phase: its latest audit entry for that phase."""
    if status.phase is None:
        return None
    entry = next((e for e in reversed(status.audit) if e.action == status.phase.value), None)
    return entry.time if entry is not None else status.timestamps.created


class Metrics:
    def __init__(self, registry: CollectorRegistry | None = None,
                 clock: Callable[[], datetime.datetime] = _utcnow) -> None:
        self.registry = registry or CollectorRegistry()
        r = self.registry
        self.transitions = _Counts("hotfix_phase_transitions_total", "HotfixRelease phase transitions, by new phase",
                                   ["namespace", "phase"], registry=r)
        self.outcomes = _Counts("hotfix_releases_total", "Finished HotfixReleases, by outcome (the terminal phase)",
                                ["namespace", "outcome"], registry=r)
        self.time_to_production = _Histograms(
            "hotfix_time_to_production_seconds", "From creation to traffic on the hotfix (the SLA clock)",
            ["namespace"], buckets=_DURATION_BUCKETS, registry=r)
        self.approval_to_production = _Histograms(
            "hotfix_approval_to_production_seconds", "From approval to traffic on the hotfix (the operator's share)",
            ["namespace"], buckets=_DURATION_BUCKETS, registry=r)
        self.approval_wait = _Histograms(
            "hotfix_approval_wait_seconds", "From proven provenance (approval requested) to the last counted approval",
            ["namespace"], buckets=_DURATION_BUCKETS, registry=r)
        self.phase_duration = Histogram("hotfix_phase_duration_seconds",
                                        "Time spent in a phase, observed on leaving it", ["phase"],
                                        buckets=_DURATION_BUCKETS, registry=r)
        self.sla_breaches = _Counts("hotfix_sla_breaches_total", "Releases whose SLA deadline passed before traffic "
                                    "reached the hotfix (condition SLABreached)", ["namespace"], registry=r)
        self.rollbacks = _Counts("hotfix_rollbacks_total", "Rollbacks started (phase RollingBack), by reason",
                                 ["namespace", "reason"], registry=r)
        self.verifications = Counter(
            "hotfix_provenance_verifications_total", "Provenance gate results (verified, refused, retry: registry "
            "outage), by reason", ["result", "reason"], registry=r)
        self.followup_steps = Counter("hotfix_followup_steps_total",
                                      "Follow-up steps after promotion (tag, release, backport, post-mortem), "
                                      "by step and result (ok, transient, permanent)", ["step", "result"], registry=r)
        self.followup_failures = Counter("hotfix_followup_step_failures_total",
                                         "Failed follow-up steps, by step and reason", ["step", "reason"], registry=r)
        self.postmortems_overdue = Counter("hotfix_postmortems_overdue_total",
                                           "Hotfixes whose post-mortem missed its deadline (an issue was opened)",
                                           registry=r)
        self.admission_policy_installed = Gauge(
            "hotfix_admission_policy_installed", "1 when the shipped admission policy and binding are installed "
            "unaltered; 0 stops every approval (kubectl apply -f crds/admission.yaml)", registry=r)
        self.undos = _Counts("hotfix_undos_total", "spec.undo after success, by outcome (Undone, UndoFailed, "
                             "Refused)", ["namespace", "outcome"], registry=r)
        self.undo_to_previous = _Histograms(
            "hotfix_undo_to_previous_seconds", "From spec.undo seen to the active Service's EndpointSlices listing "
            "only the previous version's pods", ["namespace"], buckets=_DURATION_BUCKETS, registry=r)
        self.notifications = Counter("hotfix_notifications_total", "Notices sent to the HotfixPolicy's receivers, "
                                     "by receiver, kind and result (delivered, failed)",
                                     ["receiver", "kind", "result"], registry=r)
        self.drills = _Counts("hotfix_drills_total", "Finished drills (spec.drill), by outcome (DrillPassed, "
                              "DrillFailed); drills count nowhere else", ["namespace", "outcome"], registry=r)
        self.drill_stages = Histogram("hotfix_drill_stage_seconds", "A drill's measured stages (review, "
                                      "gatesAndDeployment, verification), observed when its verdict is in",
                                      ["stage"], buckets=_DURATION_BUCKETS, registry=r)
        self.reconcile_errors = Counter("hotfix_reconcile_errors_total", "Reconciles that raised and were retried",
                                        registry=r)
        self.reconcile_duration = Histogram("hotfix_reconcile_duration_seconds", "Wall time of one reconcile",
                                            buckets=_RECONCILE_BUCKETS, registry=r)
        self.leader = Gauge("hotfix_leader", "1 while this process acts: it holds the leader Lease (--leader-elect) "
                            "or runs without election; 0 on a standby", registry=r)
        self.fleet = _Fleet(clock)
        r.register(self.fleet)
        self._namespaces: set[str] = set()
        for phase in Phase:
            if phase not in DRILL_PHASES:
                self.phase_duration.labels(phase=phase.value)

    def _touch(self, namespace: str) -> None:
        """Create a namespace's series at 0 when first seen: rate() and increase() need a sample before
        the first event, or the first hotfix of a namespace never shows on a panel or in an alert."""
        if namespace in self._namespaces:
            return
        self._namespaces.add(namespace)
        for histogram in (self.time_to_production, self.approval_to_production, self.approval_wait):
            histogram.labels(namespace=namespace)
        self.sla_breaches.labels(namespace=namespace)
        for phase in Phase:
            if phase in DRILL_PHASES:
                continue
            self.transitions.labels(namespace=namespace, phase=phase.value)
            if phase.terminal:
                self.outcomes.labels(namespace=namespace, outcome=phase.value)

    def record(self, before: Status, after: Status, namespace: str = "", name: str = "") -> None:
        """One reconcile's change from `before` to `after` (called once per reconcile)."""
        if after.drill is not None:
            self._drill(before, after, namespace)
            return
        self._touch(namespace)
        self._phases(before, after, namespace)
        self._clocks(before, after, namespace)
        self._conditions(before, after, namespace)
        if name:
            overdue = after.condition(ConditionType.POSTMORTEM_OVERDUE)
            complete = after.condition(ConditionType.POSTMORTEM_COMPLETE)
            self.fleet.update(_Live(namespace, name, after.phase,
                                    after.sla_deadline if after.timestamps.promoted is None else None,
                                    overdue is not None and overdue.status == "True"
                                    and not (complete is not None and complete.status == "True")))

    def _drill(self, before: Status, after: Status, namespace: str) -> None:
        """A drill's own series: its outcome once, its stage times when its verdict is first in."""
        drill, old = after.drill, before.drill
        assert drill is not None
        if drill.outcome is not None and (old is None or old.outcome is None):
            for stage in drill.stages:
                if stage.seconds is not None:
                    self.drill_stages.labels(stage=stage.name).observe(stage.seconds)
        if after.phase in (Phase.DRILL_PASSED, Phase.DRILL_FAILED) and before.phase != after.phase:
            self.drills.labels(namespace=namespace, outcome=after.phase.value).inc()

    def _phases(self, before: Status, after: Status, namespace: str) -> None:
        previous, since = before.phase, _entered_at(before)
        for entry in _phases_entered(before, after):
            phase = Phase(entry.action)
            if previous is not None and since is not None:
                self.phase_duration.labels(phase=previous.value).observe(max(0.0, (entry.time - since).total_seconds()))
            self.transitions.labels(namespace=namespace, phase=phase.value).inc()
            if phase in (Phase.UNDONE, Phase.UNDO_FAILED):
                self.undos.labels(namespace=namespace, outcome=phase.value).inc()
            elif phase.terminal:
                self.outcomes.labels(namespace=namespace, outcome=phase.value).inc()
            if phase is Phase.ROLLING_BACK:
                rolled = after.condition(ConditionType.ROLLED_BACK)
                self.rollbacks.labels(namespace=namespace, reason=rolled.reason if rolled else "Unknown").inc()
            previous, since = phase, entry.time

    def _clocks(self, before: Status, after: Status, namespace: str) -> None:
        ts, old = after.timestamps, before.timestamps
        if ts.approved and old.approved is None:
            requested = ts.verified or ts.created
            if requested:
                self.approval_wait.labels(namespace=namespace).observe(
                    max(0.0, (ts.approved - requested).total_seconds()))
        # traffic reached the hotfix when the EndpointSlices were seen on green, not when it was decided
        if ts.promoted and old.promoted is None:
            if ts.created:
                self.time_to_production.labels(namespace=namespace).observe((ts.promoted - ts.created).total_seconds())
            if ts.approved:
                self.approval_to_production.labels(namespace=namespace).observe(
                    (ts.promoted - ts.approved).total_seconds())
        undo, old_undo = after.undo, before.undo
        if undo is not None and undo.decision == "Refused" and (old_undo is None or old_undo.decision != "Refused"):
            self.undos.labels(namespace=namespace, outcome="Refused").inc()
        switched, requested = (undo.times.switched, undo.times.requested) if undo else (None, None)
        if switched and requested and not (old_undo and old_undo.times.switched):
            self.undo_to_previous.labels(namespace=namespace).observe(max(0.0, (switched - requested).total_seconds()))

    def _conditions(self, before: Status, after: Status, namespace: str) -> None:
        breached, was = after.condition(ConditionType.SLA_BREACHED), before.condition(ConditionType.SLA_BREACHED)
        if breached is not None and breached.status == "True" and (was is None or was.status != "True"):
            self.sla_breaches.labels(namespace=namespace).inc()
        gate, old_gate = (after.condition(ConditionType.PROVENANCE_VERIFIED),
                          before.condition(ConditionType.PROVENANCE_VERIFIED))
        changed = old_gate is None or (gate is not None and (gate.status, gate.reason) != (old_gate.status,
                                                                                            old_gate.reason))
        if gate is not None and (changed or after.verify_attempts > before.verify_attempts):
            result = {"True": "verified", "False": "refused"}.get(gate.status, "retry")
            self.verifications.labels(result=result, reason=gate.reason).inc()

    def record_followup(self, decision: FollowupDecision) -> None:
        if decision.step is None:
            return
        failure = decision.failure
        result = "ok" if failure is None else "transient" if failure.transient else "permanent"
        self.followup_steps.labels(step=decision.step.value, result=result).inc()
        if failure is not None:
            self.followup_failures.labels(step=decision.step.value, reason=failure.reason).inc()
        if decision.overdue_opened:
            self.postmortems_overdue.inc()
