"""A toy cluster for testing the pure lifecycle: just enough Deployment, ReplicaSet-hash, Service and
endpoint behaviour to drive reconcile() through every phase, with crashes injected between steps.
Kubernetes itself is exercised in tests/integration; this only feeds the core plausible observations.

EndpointSlices lag, as the real controller-manager's do: the published endpoints follow the selector
and the pods only when the EndpointSlice controller syncs, which the test schedules (`endpoint_syncs`,
one entry per tick; `stall_endpoints()` stops it). Until then they keep listing what they listed,
including pods that are gone, and traffic reaches only the listed pods that still exist and are ready."""

from __future__ import annotations

import dataclasses
import datetime
import hashlib
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from hotfix_operator.api import LABEL_RELEASE_UID, POD_TEMPLATE_HASH, CheckStage, Phase
from hotfix_operator.core.actions import (
    Action,
    CreateDeployment,
    DeleteDeployment,
    SetContainerImage,
    SetServiceSelector,
)
from hotfix_operator.core.check_eval import Judgement
from hotfix_operator.core.check_model import CheckState, Measurement
from hotfix_operator.core.governance import AdmissionCheck, ApprovalCheck, GovernanceRules
from hotfix_operator.core.lifecycle import Decision, checks_to_measure, reconcile
from hotfix_operator.core.model import Release, Status
from hotfix_operator.core.observations import (
    CheckPlan,
    DeploymentView,
    ImageCheck,
    Observations,
    ProvenanceCheck,
    ServiceView,
)
from tests.support.releases import T0

BLUE_IMAGE = "registry.example.com/shop/checkout:4.1.1"
APP = {"app": "checkout"}


def template_hash(template: dict[str, Any]) -> str:
    return hashlib.sha256(
        repr(sorted(template["metadata"]["labels"].items())).encode()
        + template["spec"]["containers"][0]["image"].encode()
    ).hexdigest()[:10]


@dataclass
class Deployment:
    name: str
    selector: dict[str, str]
    template: dict[str, Any]
    replicas: int = 3
    labels: dict[str, str] = field(default_factory=dict)
    generation: int = 1
    observed_generation: int = 1
    # hash -> pod count ready; the newest template's hash rolls in over `rollout_ticks`
    pods: dict[str, int] = field(default_factory=dict)
    deleted: bool = False
    # ticks until new pods become ready; None = never (a green that cannot come up)
    ready_after: int | None = 1
    _pending_ticks: int = 0

    @property
    def current_hash(self) -> str:
        return template_hash(self.template)

    def view(self) -> DeploymentView:
        current = self.current_hash
        up = self.pods.get(current, 0)
        return DeploymentView(
            name=self.name,
            generation=self.generation,
            observed_generation=self.observed_generation,
            replicas=self.replicas,
            updated_replicas=up,
            available_replicas=sum(self.pods.values()) if up else 0,
            current_hash=current if self.observed_generation >= self.generation else None,
            selector=self.selector,
            pod_template=self.template,
            labels=self.labels,
            stuck_reason=None if self.ready_after is not None else 'pods "x" is forbidden: exceeded quota',
        )

    def tick(self) -> None:
        self.observed_generation = self.generation
        current = self.current_hash
        if self.pods.get(current, 0) >= self.replicas:
            self.pods = {current: self.replicas}
            return
        if self.ready_after is None:
            return
        self._pending_ticks += 1
        if self._pending_ticks >= self.ready_after:
            self.pods = {current: self.replicas}
            self._pending_ticks = 0


@dataclass
class World:
    release: Release
    now: datetime.datetime = T0
    green_ready_after: int | None = 1
    blue: Deployment = field(init=False)
    green: Deployment | None = None
    selector: dict[str, str] = field(default_factory=lambda: dict(APP))
    preview_selector: dict[str, str] = field(default_factory=lambda: dict(APP))
    # the active Service's selector changes, each as the pod-template-hash it leaves (None: the original)
    selector_moves: list[str | None] = field(default_factory=list)
    terminating_green_pods: int = 0
    image_check: ImageCheck = field(default_factory=lambda: ImageCheck(ok=True))
    queue_ahead: tuple[str, ...] = ()
    rules: GovernanceRules = field(default_factory=GovernanceRules)
    admission: AdmissionCheck = field(default_factory=lambda: AdmissionCheck(ok=True))
    # approvers whose right to approve a SubjectAccessReview would deny now
    revoked: frozenset[str] = frozenset()
    # per tick: does the EndpointSlice controller sync? Once exhausted it syncs every tick
    endpoint_syncs: Iterator[bool] = field(default_factory=lambda: iter(()))
    endpoints_stalled: bool = False
    # the ready pods the EndpointSlice controller counts while its pod informer lags (None: the real ones)
    controller_pods: dict[str, int] | None = None
    published: frozenset[str] = field(init=False, default=frozenset())
    # what the preview Service's EndpointSlices list (synced with the active Service's)
    preview_published: frozenset[str] = field(init=False, default=frozenset())
    # each check measurement's stage, and the pod-template-hashes of the pods the preview Service's
    # EndpointSlices listed when it was made
    measured_through: list[tuple[CheckStage, frozenset[str]]] = field(default_factory=list)
    provenance: ProvenanceCheck = field(default_factory=lambda: ProvenanceCheck(
        ok=True, reason="Verified", message="ok", policy="test",
        summary={"signers": [{"signer": "key release (SHA256:ab)"}], "builderId": "https://ci.example.com/b",
                 "sourceRepository": "github.com/acme/checkout", "commitSha": "a" * 40,
                 "predicateTypes": ["https://slsa.dev/provenance/v1"]}))

    # the health checks the policy and the release add up to, as the shell would plan them at Verifying
    check_plan: CheckPlan = field(default_factory=lambda: CheckPlan(ok=True))
    # what a check's target answers when measured: (check, now) -> (outcome, value, message)
    answer: Callable[[CheckState, datetime.datetime], Judgement] = lambda check, now: ("pass", "200", "ok")
    measured: list[Measurement] = field(default_factory=list)

    def __post_init__(self) -> None:
        template = {
            "metadata": {"labels": {"app": "checkout", "tier": "web"}},
            "spec": {"containers": [{"name": "app", "image": BLUE_IMAGE}]},
        }
        self.blue = Deployment("checkout", dict(APP), template)
        self.blue.pods = {self.blue.current_hash: 3}
        self.sync_endpoints()

    def stall_endpoints(self, stalled: bool = True) -> None:
        self.endpoints_stalled = stalled

    def lag_pod_view(self, lagging: bool = True) -> None:
        """The EndpointSlice controller goes on syncing selectors, but stops seeing pods come and go (its pod
        informer stale, as after an API server restart): it counts the pods ready now until `lagging` is off."""
        self.controller_pods = self.ready_pods() if lagging else None

    def ready_pods(self) -> dict[str, int]:
        pods = dict(self.blue.pods)
        if self.green and not self.green.deleted:
            for h, n in self.green.pods.items():
                pods[h] = pods.get(h, 0) + n
        return pods

    def ready_ips(self, pods: dict[str, int] | None = None) -> dict[str, frozenset[str]]:
        """Ready pod IPs by pod-template-hash (of `pods`, else the real ones); a pod keeps its IP while it lives."""
        counts = self.ready_pods() if pods is None else pods
        return {h: frozenset(f"ip-{h}-{j}" for j in range(n)) for h, n in counts.items() if n}

    def sync_endpoints(self) -> None:
        """What the EndpointSlice controller publishes for the active Service when it syncs."""
        self.published = self.selected_by(self.selector)
        self.preview_published = self.selected_by(self.preview_selector)

    def selected_by(self, selector: Mapping[str, str]) -> frozenset[str]:
        wanted = selector.get(POD_TEMPLATE_HASH)
        counted = self.ready_ips(self.controller_pods)
        return frozenset().union(*(ips for h, ips in counted.items() if wanted in (None, h)))

    def serving(self) -> int:
        """Endpoints that really take traffic: listed in the EndpointSlices, and still a ready pod."""
        live = frozenset().union(*self.ready_ips().values())
        return len(self.published & live)

    def observe(self, status: Status | None = None) -> Observations:
        """What the shell would see; given the status, it also measures the checks that are due."""
        green = self.green.view() if self.green and not self.green.deleted else None
        pods = self.ready_ips()
        endpoints = self.published
        green_pods = self.terminating_green_pods + (sum(self.green.pods.values()) if green and self.green else 0)
        seen = Observations(
            now=self.now,
            blue=self.blue.view(),
            service=ServiceView("checkout", dict(self.selector)),
            preview_service=ServiceView("checkout-preview", dict(self.preview_selector)),
            green=green,
            endpoint_ips=endpoints,
            preview_endpoint_ips=self.preview_published,
            pod_ips_by_hash=pods,
            green_pod_count=green_pods,
            image=self.image_check, provenance=self.provenance,
            queue_ahead=self.queue_ahead, rules=self.rules, approvals=self.approval_check(),
            check_plan=self.check_plan,
        )
        return dataclasses.replace(seen, measurements=self.measure(status, seen))

    def measure(self, status: Status | None, seen: Observations) -> tuple[Measurement, ...]:
        """What the shell measures: the checks due that can reach what they judge (checks_to_measure)."""
        return () if status is None else self.answer_checks(checks_to_measure(status, seen))

    def answer_checks(self, due: tuple[CheckState, ...]) -> tuple[Measurement, ...]:
        made = []
        listed = frozenset(h for h, ips in self.ready_ips().items() if ips & self.preview_published)
        for check in due:
            self.measured_through.append((check.stage, listed))
            outcome, value, message = self.answer(check, self.now)
            made.append(Measurement(name=check.name, stage=check.stage, outcome=outcome, at=self.now, value=value,
                                    message=message))
        self.measured.extend(made)
        return tuple(made)

    def approval_check(self) -> ApprovalCheck:
        if not self.admission.ok:
            return ApprovalCheck(self.admission)
        authors = {a.approver for a in self.release.spec.approval.approvals}
        if self.release.spec.undo is not None:
            authors |= {a.approver for a in self.release.spec.undo.approvals}
        return ApprovalCheck(self.admission, {who: who not in self.revoked for who in authors})

    def apply(self, action: Action) -> None:
        if isinstance(action, SetServiceSelector):
            if action.service == "checkout":
                if dict(action.selector) != self.selector:
                    self.selector_moves.append(action.selector.get(POD_TEMPLATE_HASH))
                self.selector = dict(action.selector)
            else:
                self.preview_selector = dict(action.selector)
        elif isinstance(action, CreateDeployment):
            if self.green is None or self.green.deleted:
                m = action.manifest
                self.green = Deployment(
                    m["metadata"]["name"],
                    dict(m["spec"]["selector"]["matchLabels"]),
                    m["spec"]["template"],
                    replicas=m["spec"]["replicas"],
                    labels=dict(m["metadata"]["labels"]),
                    ready_after=self.green_ready_after,
                )
        elif isinstance(action, DeleteDeployment):
            assert self.green is not None and self.green.labels[LABEL_RELEASE_UID] == action.release_uid
            self.terminating_green_pods = sum(self.green.pods.values())
            self.green.deleted = True
        elif isinstance(action, SetContainerImage):
            container = self.blue.template["spec"]["containers"][0]
            if container["image"] != action.image:
                container["image"] = action.image
                self.blue.generation += 1
        else:
            raise TypeError(action)

    def tick(self, seconds: float = 1.0) -> None:
        self.now += datetime.timedelta(seconds=seconds)
        self.blue.tick()
        if self.green and not self.green.deleted:
            self.green.tick()
        self.terminating_green_pods = 0
        if next(self.endpoint_syncs, True) and not self.endpoints_stalled:
            self.sync_endpoints()


TERMINAL = {p for p in Phase if p.terminal}


def run_until(world: World, status: Status, done: Callable[[Status], bool], steps: int = 200,
              decisions: list[Decision] | None = None) -> Status:
    """Reconcile and act until `done(status)` holds after a reconcile; time passes between reconciles.
    The active Service must have ready endpoints throughout."""
    for _ in range(steps):
        decision = reconcile(world.release, status, world.observe(status))
        if decisions is not None:
            decisions.append(decision)
        status = decision.status
        for action in decision.actions:
            world.apply(action)
            assert world.serving() > 0, f"no ready endpoints after {action}"
        if done(status):
            return status
        world.tick()
        assert world.serving() > 0, f"no ready endpoints in {status.phase}: {status.message}"
    raise AssertionError(f"not reached after {steps} steps: {status.phase} {status.message}")


def drive(world: World, status: Status | None = None, steps: int = 200,
          never_dark: bool = False) -> tuple[Status, list[Decision]]:
    """Reconcile, act and let time pass until a terminal phase with nothing left to do."""
    status = status or Status()
    decisions: list[Decision] = []
    for _ in range(steps):
        decision = reconcile(world.release, status, world.observe(status))
        decisions.append(decision)
        status = decision.status
        for action in decision.actions:
            world.apply(action)
            assert not never_dark or world.serving() > 0, f"no ready endpoints after {action}"
        if status.phase in TERMINAL and not decision.actions:
            return status, decisions
        world.tick()
        assert not never_dark or world.serving() > 0, f"no ready endpoints in {status.phase}"
    raise AssertionError(f"no terminal phase after {steps} steps: {status.phase} {status.message}")
