"""One reconcile of one HotfixRelease: observe, decide (the pure core), write status, act, tell.

The controller sequences and carries out; it decides nothing. Which gate runs, whether the release
is finished and whether follow-ups are due are the core's answers (core.lifecycle)."""

from __future__ import annotations

import dataclasses
import datetime
import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

from hotfix_operator.adapters.kube import KubeAdapter
from hotfix_operator.adapters.policies import PolicyProblem, PolicyResolver, ReconcilePolicies
from hotfix_operator.api import OPERATOR, Phase
from hotfix_operator.core.actions import (
    Action,
    Event,
    SetServiceSelector,
    ahead_of_status,
    one_per_passage,
    removes_protection,
)
from hotfix_operator.core.lifecycle import (
    GATED_PHASES,
    checks_due,
    checks_to_measure,
    followups_due,
    is_finished,
    needs_approval_check,
    needs_check_plan,
    needs_image_check,
    needs_provenance_check,
    needs_rules,
    only_progress,
    reconcile,
    watched_objects,
)
from hotfix_operator.core.model import Abort, Release, Status
from hotfix_operator.core.observations import Observations, ServiceView
from hotfix_operator.core.step import Decision
from hotfix_operator.followup_runner import FollowupRunner
from hotfix_operator.gates import Gates
from hotfix_operator.metrics import Metrics
from hotfix_operator.notifier import Notifier
from hotfix_operator.probes import Probes

log = logging.getLogger(__name__)
T = TypeVar("T")
# how often a status change that is only a progress line is written (core.lifecycle.only_progress)
PROGRESS_WRITE_SECONDS = 2.0
# how long the first checks through the preview Service wait for its EndpointSlices (Controller.await_preview)
PREVIEW_WAIT_SECONDS, PREVIEW_POLL_SECONDS = 0.5, 0.002


def utcnow() -> datetime.datetime:
    # whole seconds: status times are compared and shown at that precision
    return datetime.datetime.now(datetime.UTC).replace(microsecond=0)


@dataclass(frozen=True)
class Outcome:
    phase: Phase | None
    # seconds until the next reconcile; None = when the object changes
    requeue_after: float | None
    # the release needs no more reconciles (gone, or finished with nothing left to undo)
    done: bool
    # (kind, name) in the release's namespace whose changes should wake it at once
    watches: tuple[tuple[str, str], ...] = ()


def resource_version(body: Mapping[str, Any]) -> int | None:
    """A resourceVersion as the integer Kubernetes (1.35, KEP-5504) lets clients compare; None if not one."""
    value = str((body.get("metadata") or {}).get("resourceVersion") or "")
    return int(value) if value.isdigit() and not value.startswith("0") else None


def newest(a: dict[str, Any], b: dict[str, Any]) -> dict[str, Any] | None:
    """The later of two copies of one object, by resourceVersion; None when they cannot be compared."""
    va, vb = resource_version(a), resource_version(b)
    if va is None or vb is None:
        return None
    return a if va >= vb else b


def _sooner(a: float | None, b: float | None) -> float | None:
    if a is None:
        return b
    return a if b is None else min(a, b)


def with_selectors(observations: Observations, done: tuple[Action, ...]) -> Observations:
    """The observations with the Service selectors just written, so a decision made again on them does not
    write them again."""
    def written(view: ServiceView | None) -> ServiceView | None:
        for action in done:
            if isinstance(action, SetServiceSelector) and view is not None and view.name == action.service:
                view = dataclasses.replace(view, selector=dict(action.selector))
        return view

    return dataclasses.replace(observations, service=written(observations.service),
                               preview_service=written(observations.preview_service))


class Controller:
    def __init__(self, kube: KubeAdapter, policies: PolicyResolver, gates: Gates, metrics: Metrics, *,
                 probes: Probes, clock: Callable[[], datetime.datetime] = utcnow,
                 followup: FollowupRunner | None = None, notifier: Notifier | None = None) -> None:
        self.kube = kube
        self.policies = policies
        self.gates = gates
        self.probes = probes
        # notices to the HotfixPolicy's receivers (None: none are sent, e.g. in unit tests)
        self.notifier = notifier
        self.metrics = metrics
        self.clock = clock
        # publishing, backport and post-mortem after the bake (None: never, e.g. in unit tests)
        self.followup = followup
        # (namespace, name) -> the object as this operator's last status write left it, until the watch has
        # delivered that version (it may not have when the next reconcile starts); without its managedFields,
        # which nothing here reads: with 200 releases in flight, these copies are megabytes
        self._written: dict[tuple[str, str], dict[str, Any]] = {}
        # (namespace, name) -> that write's resourceVersion: its watch event brings nothing new (is_own_write)
        self._written_version: dict[tuple[str, str], str] = {}
        self._written_at: dict[tuple[str, str], float] = {}
        # (namespace, name) -> ((uid, resourceVersion), release, status): the last version parsed
        self._parsed: dict[tuple[str, str], tuple[tuple[Any, Any], Release, Status]] = {}

    def reconcile_once(self, namespace: str, name: str, *, force_abort: bool = False,
                       seen: dict[str, Any] | None = None) -> Outcome:
        """One reconcile. `seen` is the object as the watch last delivered it (None: read it live).

        A release is finished only on a live read: "nothing left, ever" is the one answer no later event
        corrects, and the watch's copy may not yet hold a change made just before (an undo set as its
        window closes, while the operator was stalled)."""
        with self.metrics.reconcile_duration.time():
            outcome = self._reconcile_once(namespace, name, force_abort=force_abort, seen=seen)
            if outcome.done and seen is not None:
                outcome = self._reconcile_once(namespace, name, force_abort=force_abort, seen=None)
        if outcome.done:
            self._written.pop((namespace, name), None)
            self._written_version.pop((namespace, name), None)
            self._written_at.pop((namespace, name), None)
            self._parsed.pop((namespace, name), None)
        return outcome

    def parse(self, namespace: str, name: str, body: dict[str, Any]) -> tuple[Release, Status]:
        """The release and status of `body`, parsed once per resourceVersion. Most reconciles are woken by the
        objects a cutover waits on and read a version an earlier one already parsed, and validating the status
        costs more than deciding on it. The models are frozen, so one parse can serve them all."""
        meta = body.get("metadata") or {}
        version = (meta.get("uid"), meta.get("resourceVersion"))
        cached = self._parsed.get((namespace, name))
        if cached is not None and version[1] is not None and cached[0] == version:
            return cached[1], cached[2]
        release, status = Release.from_body(body), Status.from_body(body)
        self._parsed[(namespace, name)] = (version, release, status)
        return release, status

    def release_body(self, namespace: str, name: str, seen: dict[str, Any] | None) -> dict[str, Any] | None:
        """The newest HotfixRelease known: the watch's copy or what this operator's last status write
        returned, by resourceVersion (comparable within a resource since Kubernetes 1.35); read live
        when there is neither, or a version is not a plain integer."""
        written = self._written.get((namespace, name))
        if seen is None:
            return self.kube.get_release(namespace, name)
        if written is None:
            return seen
        newer = newest(seen, written)
        if newer is seen:
            self._written.pop((namespace, name), None)  # the watch has caught up: its copy is the newest from now on
        return newer if newer is not None else self.kube.get_release(namespace, name)

    def is_own_write(self, namespace: str, name: str, body: Mapping[str, Any]) -> bool:
        """Whether `body` is exactly the version this operator's last status write stored: its watch event
        brings nothing the last decision did not already see."""
        version = (body.get("metadata") or {}).get("resourceVersion")
        return version is not None and self._written_version.get((namespace, name)) == version

    def _holds_back(self, release: Release, status: Status, decision: Decision) -> bool:
        at = self._written_at.get((release.namespace, release.name))
        return (at is not None and time.monotonic() - at < PROGRESS_WRITE_SECONDS and not decision.actions
                and not decision.events and only_progress(status, decision.status))

    def _write_status(self, release: Release, status: Status) -> None:
        self._written_at[(release.namespace, release.name)] = time.monotonic()
        stored = self.kube.write_status(release, status)
        if stored:
            (stored.get("metadata") or {}).pop("managedFields", None)
            self._written[(release.namespace, release.name)] = stored
            self._written_version[(release.namespace, release.name)] = (stored.get("metadata") or {}).get(
                "resourceVersion", "")

    def _reconcile_once(self, namespace: str, name: str, *, force_abort: bool = False,
                        seen: dict[str, Any] | None = None) -> Outcome:
        body = self.release_body(namespace, name, None if force_abort else seen)
        if body is None:
            return Outcome(None, None, done=True)
        release, status = self.parse(namespace, name, body)
        if force_abort:
            # the finalizer of a release deleted mid-cutover: who deleted it is in the API server's audit log
            deleted = Abort(by=OPERATOR, reason="the HotfixRelease was deleted while it held production")
            release = release.model_copy(update={"spec": release.spec.model_copy(update={"abort": deleted})})
        policies = ReconcilePolicies(self.policies)
        now = self.clock()
        observations = self.gather(release, status, policies, now)
        decision = self.decide(release, status, observations)
        for _ in range(len(GATED_PHASES)):
            # The decision entered a phase before production whose gate this reconcile has not asked yet:
            # ask it and decide again from the same start, so the phases chain (core.lifecycle.run_phases)
            # and one status write records them all.
            if decision.status.phase == status.phase or decision.status.phase not in GATED_PHASES:
                break
            observations = self.gather(release, decision.status, policies, now, earlier=observations)
            decision = self.decide(release, status, observations)
        if decision.status.phase != status.phase and checks_due(decision.status, now):
            decision = self.begin_checks(release, status, observations, decision)
        else:
            decision = self.carry_out(release, status, decision)
        self.post_events(release, decision.events, now)
        current = self.tell(release, decision.status, now, policies)
        wake = self.notifier.wake_in(release, current, now) if self.notifier is not None else None
        outcome = Outcome(decision.status.phase, _sooner(decision.requeue_after, wake),
                          done=is_finished(decision) and wake is None,
                          watches=watched_objects(release, current, pods=decision.wakes_on_pods))
        if followups_due(current) and self.followup is not None:
            return self.follow_up(release, current, outcome, policies)
        return outcome

    def begin_checks(self, release: Release, status: Status, observations: Observations,
                     decision: Decision) -> Decision:
        """The decision began a stage of checks: its first measurements need not wait for another reconcile,
        nor for a status write. What the decision may carry out ahead of its write (the preview Service on
        green) goes first, then the measurements, then the decision on them, and one status write records
        both. A decision with anything else to do writes and acts first. The Events of both are returned,
        to be posted after every action."""
        now = observations.now
        if len(ahead_of_status(decision.actions)) == len(decision.actions):
            self.go_ahead(release, status, decision)
            written, pending = status, decision
        else:
            written, pending = decision.status, self.carry_out(release, status, decision)
        seen = self.await_preview(release, pending.status, with_selectors(observations, decision.actions))
        again = dataclasses.replace(seen, check_plan=None, measurements=self.probes.measure(
            release, pending.status, checks_to_measure(pending.status, seen), now))
        then = self.carry_out(release, written, self.decide(release, pending.status, again))
        return dataclasses.replace(then, events=decision.events + then.events)

    def await_preview(self, release: Release, status: Status, observations: Observations) -> Observations:
        """Observations in which the preview Service's EndpointSlices list only the side its checks judge,
        waited for on the watch cache for at most PREVIEW_WAIT_SECONDS (the EndpointSlice controller takes
        milliseconds after the selector moved). Waiting here, not in a later reconcile, keeps green available,
        the first checks' results and their verdict in one status write; if the wait runs out, the decision
        says what it waits for and the EndpointSlices' watch event wakes the release."""
        if not self.kube.cached or not checks_due(status, observations.now):
            return observations
        seen, deadline = observations, time.monotonic() + PREVIEW_WAIT_SECONDS
        while not checks_to_measure(status, seen) and time.monotonic() < deadline:
            time.sleep(PREVIEW_POLL_SECONDS)
            seen = dataclasses.replace(self.kube.observe(
                release, status, observations.now, observations.image, observations.provenance,
                rules=observations.rules, approvals=observations.approvals), queue_ahead=observations.queue_ahead)
        return seen

    def gather(self, release: Release, status: Status, policies: ReconcilePolicies, now: datetime.datetime,
               earlier: Observations | None = None) -> Observations:
        """What `status`'s phase decides on: the gates it asks for and the queue (what `earlier` holds is
        kept, not asked again), the cluster as observed now, and the checks due."""
        def ask(held: T | None, needed: bool, gate: Callable[[], T | None]) -> T | None:
            return held if held is not None else (gate() if needed else None)

        before = earlier or Observations(now=now, blue=None, service=None, preview_service=None, green=None)
        image = ask(before.image, needs_image_check(status), lambda: self.gates.check_image(release, policies))
        provenance = ask(before.provenance, needs_provenance_check(status),
                         lambda: self.gates.check_provenance(release, policies))
        rules = ask(before.rules, needs_rules(status), lambda: self.gates.rules(release, policies))
        approvals = ask(before.approvals, needs_approval_check(status), lambda: self.gates.check_approvals(release))
        if approvals is not None and approvals is not before.approvals:
            self.metrics.admission_policy_installed.set(1 if approvals.admission.ok else 0)
        plan = ask(before.check_plan, needs_check_plan(status), lambda: self.probes.plan(release, status, policies))
        observations = self.kube.observe(release, status, now, image, provenance, rules=rules, approvals=approvals)
        queue = before.queue_ahead if observations.queue_ahead is None else observations.queue_ahead
        measured = self.probes.measure(release, status, checks_to_measure(status, observations), now)
        return dataclasses.replace(observations, check_plan=plan, measurements=measured, queue_ahead=queue)

    def decide(self, release: Release, status: Status, observations: Observations) -> Decision:
        """The core's decision; one that removes something or unpins the active Service
        (core.actions.removes_protection) is made again on live reads when the first was made on the watch
        cache, which may be a few milliseconds behind: an old view can show the other side serving, or green's
        pods gone, when it is not so, and nothing may be removed or widened on that."""
        decision = reconcile(release, status, observations)
        if self.kube.cached and removes_protection(decision.actions, release.spec.target.service):
            live = self.kube.observe(release, status, observations.now, observations.image, observations.provenance,
                                     rules=observations.rules, approvals=observations.approvals, live=True)
            live = dataclasses.replace(live, check_plan=observations.check_plan,
                                       measurements=observations.measurements)
            decision = reconcile(release, status, live)
        return decision

    def carry_out(self, release: Release, status: Status, decision: Decision) -> Decision:
        """Write the decided status, then act (the order core.lifecycle relies on), except for the actions the
        core marks to go ahead of the write (core.actions.ahead_of_status); the caller posts the decision's
        Events after whatever else it still carries out (post_events)."""
        if self._holds_back(release, status, decision):
            # A progress line alone is written at most once a PROGRESS_WRITE_SECONDS: each write costs the API
            # server a decode and store of the whole release, and a reconcile busy writing one reacts late to the
            # change it waits for (green available, say). The next reconcile writes it.
            wait = PROGRESS_WRITE_SECONDS - (time.monotonic() - self._written_at[(release.namespace, release.name)])
            return dataclasses.replace(decision, status=status, requeue_after=_sooner(decision.requeue_after,
                                                                                        max(0.1, wait)))
        first = self.go_ahead(release, status, decision)
        if decision.status != status:
            self._write_status(release, decision.status)
        for action in decision.actions:
            if action not in first:
                log.info("%s/%s: %s", release.namespace, release.name, self.kube.execute(release, action))
        self.metrics.record(status, decision.status, release.namespace, release.name)
        return decision

    def go_ahead(self, release: Release, status: Status, decision: Decision) -> tuple[Action, ...]:
        """Carry out the decision's actions that go ahead of its status write (core.actions.ahead_of_status).
        One that fails (refused by admission, say) leaves the decision recorded all the same, as any action
        after its write would, so status says what the release is waiting for; the failure is raised."""
        first = ahead_of_status(decision.actions)
        try:
            for action in first:
                log.info("%s/%s: %s (ahead of its status write)", release.namespace, release.name,
                         self.kube.execute(release, action))
        except Exception:
            if decision.status != status:
                self._write_status(release, decision.status)
            raise
        return first

    def post_events(self, release: Release, events: tuple[Event, ...], now: datetime.datetime) -> None:
        for event in one_per_passage(events):
            self.kube.post_event(release, event, now)

    def tell(self, release: Release, status: Status, now: datetime.datetime, policies: ReconcilePolicies) -> Status:
        """The HotfixPolicy's receivers hear what happened; their answers arrive in a later reconcile."""
        if self.notifier is None:
            return status
        told = self.notifier.step(release, status, now, policies)
        if told != status:
            self._write_status(release, told)
        return told

    def follow_up(self, release: Release, status: Status, outcome: Outcome, policies: ReconcilePolicies) -> Outcome:
        """One follow-up step after the bake; it only adds to status and never changes the phase."""
        assert self.followup is not None
        try:
            github = policies.for_namespace(release.namespace).github
        except PolicyProblem as problem:
            # Cannot tell whether (or where) to publish: keep the release in view and look again later.
            log.warning("%s/%s: follow-ups wait for the HotfixPolicy: %s", release.namespace, release.name, problem)
            return Outcome(outcome.phase, _sooner(outcome.requeue_after, self.followup.settings.check_seconds),
                           done=False, watches=outcome.watches)
        if github is None:
            return outcome
        now = self.clock()
        result = self.followup.run(release, status, github, now)
        if result.status != status:
            self._write_status(release, result.status)
        self.post_events(release, result.events, now)
        self.metrics.record_followup(result)
        if result.step is not None:
            log.info("%s/%s: follow-up %s: %s", release.namespace, release.name, result.step,
                     "failed" if result.failure else "done")
        return Outcome(outcome.phase, _sooner(outcome.requeue_after, result.requeue_after),
                       done=outcome.done and result.done, watches=outcome.watches)
