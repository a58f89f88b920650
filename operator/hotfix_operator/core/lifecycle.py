"""The hotfix lifecycle as a pure function: (release, status, observations) -> decision.

No I/O happens here. The shell writes the returned status *before* it executes the actions, and
every phase re-asserts the state it needs (a selector, a Deployment) from what it observes, so a
crash between any two steps is repaired by the next reconcile. A phase becomes terminal only when
observations confirm the end state, never in the same decision that still has actions to run.
"""

from __future__ import annotations

import copy
import datetime
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from hotfix_operator.core.actions import (
    Action,
    CreateDeployment,
    DeleteDeployment,
    Event,
    SetContainerImage,
    SetServiceSelector,
)
from hotfix_operator.core.conditions import ConditionStatus, set_condition
from hotfix_operator.core.model import AuditEntry, BlueGreen, Phase, Release, Status
from hotfix_operator.core.observations import Observations

POD_TEMPLATE_HASH = "pod-template-hash"
LABEL_RELEASE = "hotfix.dev/release"
LABEL_RELEASE_UID = "hotfix.dev/release-uid"
LABEL_ROLE = "hotfix.dev/role"
REQUIRED_APPROVALS = 1
SLA = datetime.timedelta(minutes=30)
AUDIT_LIMIT = 50
ACTIVE_REQUEUE = 1.0
# How long a selector change may take to show on the EndpointSlices before the operator warns. It never
# gives up: both sides stay up until the change is seen, however long that takes.
SWITCH_CONFIRM_SECONDS = 15.0
OPERATOR = "hotfix-operator"


@dataclass(frozen=True)
class Decision:
    status: Status
    actions: tuple[Action, ...] = ()
    events: tuple[Event, ...] = ()
    # seconds until the next reconcile is needed; None = only when the object changes
    requeue_after: float | None = None


def needs_image_check(status: Status) -> bool:
    return status.phase == Phase.PENDING


def needs_provenance_check(status: Status) -> bool:
    return status.phase == Phase.VERIFYING


def green_name(release: Release) -> str:
    return f"{release.spec.target.deployment[:40]}-hotfix-{release.uid.replace('-', '')[:8]}"


def incident_id(created: datetime.datetime) -> str:
    return "INC-" + created.astimezone(datetime.UTC).strftime("%Y%m%d-%H%M%S")


def reconcile(release: Release, status: Status, obs: Observations) -> Decision:
    step = _Step(release, status, obs)
    step.run()
    return step.decision()


@dataclass
class _Step:
    """One reconcile: accumulates the new status, actions and events."""

    release: Release
    status: Status
    obs: Observations
    actions: list[Action] = field(default_factory=list)
    events: list[Event] = field(default_factory=list)
    requeue_after: float | None = None

    # -- plumbing -------------------------------------------------------------------------------

    @property
    def spec(self) -> Any:
        return self.release.spec

    @property
    def now(self) -> datetime.datetime:
        return self.obs.now

    @property
    def bg(self) -> BlueGreen:
        return self.status.blue_green

    def update(self, **changes: Any) -> None:
        self.status = self.status.model_copy(update=changes)

    def update_bg(self, **changes: Any) -> None:
        self.update(blue_green=self.bg.model_copy(update=changes))

    def stamp(self, **changes: datetime.datetime) -> None:
        current = self.status.timestamps
        fresh = {k: v for k, v in changes.items() if getattr(current, k) is None}
        if fresh:
            self.update(timestamps=current.model_copy(update=fresh))

    def condition(self, type_: str, status: ConditionStatus, reason: str, message: str) -> None:
        self.update(conditions=set_condition(self.status.conditions, type_, status, reason, message,
                                             generation=self.release.generation, now=self.now))

    def audit(self, action: str, detail: str, actor: str = OPERATOR) -> None:
        entries = (*self.status.audit, AuditEntry(time=self.now, actor=actor, action=action, detail=detail))
        self.update(audit=entries[-AUDIT_LIMIT:])

    def act(self, action: Action) -> None:
        self.actions.append(action)

    def wait(self, seconds: float = ACTIVE_REQUEUE) -> None:
        self.requeue_after = seconds if self.requeue_after is None else min(self.requeue_after, seconds)

    def to(self, phase: Phase, message: str, *, reason: str | None = None, actor: str = OPERATOR,
           warning: bool = False) -> None:
        self.update(phase=phase, message=message)
        self.events.append(Event("Warning" if warning else "Normal", reason or phase.value, message, actor))
        self.audit(phase.value, message, actor)
        if not phase.terminal:
            self.wait(0)  # continue at once in the new phase

    def say(self, message: str) -> None:
        self.update(message=message)

    def decision(self) -> Decision:
        self._summarise()
        return Decision(self.status, tuple(self.actions), tuple(self.events), self.requeue_after)

    # -- the lifecycle --------------------------------------------------------------------------

    def run(self) -> None:
        self.update(observed_generation=self.release.generation)
        if self.status.phase is None:
            self._initialise()
            return
        phase = self.status.phase
        if self.spec.abort and self._handle_abort(phase):
            return
        handlers = {
            Phase.PENDING: self._pending,
            Phase.VERIFYING: self._verifying,
            Phase.QUEUED: self._queued,
            Phase.AWAITING_APPROVAL: self._awaiting_approval,
            Phase.DEPLOYING: self._deploying,
            Phase.PROMOTED: self._promoted,
            Phase.FINALIZING: self._finalizing,
            Phase.ROLLING_BACK: self._rolling_back,
        }
        handler = handlers.get(phase)
        if handler is not None:
            handler()

    def _initialise(self) -> None:
        created = self.release.created
        self.update(incident_id=incident_id(created), tag=self.spec.tag, sla_deadline=created + SLA,
                    approvals=f"0/{REQUIRED_APPROVALS}")
        self.stamp(created=created)
        self.to(Phase.PENDING, f"checking the target and the image for hotfix {self.spec.tag}",
                reason="Accepted", actor=self.spec.requested_by)

    def _handle_abort(self, phase: Phase) -> bool:
        why = "spec.abort was set"
        if phase in (Phase.PENDING, Phase.VERIFYING, Phase.QUEUED, Phase.AWAITING_APPROVAL):
            self._reject("Aborted", f"{why} before deployment; nothing in production changed", actor="spec.abort")
            return True
        if phase in (Phase.DEPLOYING, Phase.PROMOTED):
            self._roll_back("Aborted", f"{why}; moving traffic back to blue", actor="spec.abort")
            return True
        if phase == Phase.FAILED and self.bg.original_selector is not None and self.status.condition(
                "RolledBack") is None:
            self._roll_back("Aborted", f"{why} after a failure; restoring blue", actor="spec.abort")
            return True
        if phase == Phase.FINALIZING and not any(e.action == "AbortIgnored" for e in self.status.audit):
            self.audit("AbortIgnored", "the hotfix is already being folded into the Deployment; abort no longer "
                       "applies — ship a new HotfixRelease to change it again", actor="spec.abort")
            self.events.append(Event("Warning", "AbortIgnored", "abort arrived after promotion was final",
                                     "spec.abort"))
        return False

    def _reject(self, reason: str, message: str, *, condition: str | None = None, actor: str = OPERATOR) -> None:
        if condition:
            self.condition(condition, "False", reason, message)
        self.to(Phase.REJECTED, message, reason=reason, actor=actor, warning=True)

    def _roll_back(self, reason: str, message: str, actor: str = OPERATOR) -> None:
        if not self.spec.rollout.auto_rollback and actor == OPERATOR:
            self.to(Phase.FAILED, f"{message}; autoRollback is off, so nothing was undone: set spec.abort=true "
                    "to roll back", reason=reason, warning=True)
            return
        self.stamp(rollback_started=self.now)
        self.condition("RolledBack", "False", reason, f"rolling back: {message}")
        self.to(Phase.ROLLING_BACK, message, reason=reason, actor=actor, warning=True)

    # Pending: what the schema cannot check ------------------------------------------------------

    def _pending(self) -> None:
        problem = self._target_problem()
        if problem:
            self._reject(problem[0], problem[1], condition="InputValid")
            return
        image = self.obs.image
        if image is None:
            self.wait()
            return
        if not image.ok:
            if image.transient:
                self.condition("InputValid", "Unknown", image.reason, f"{image.message}; retrying")
                self.say(f"cannot check the image yet: {image.message}; retrying")
                self.wait(10)
                return
            self._reject(image.reason, image.message, condition="InputValid")
            return
        t = self.spec.target
        self.condition("InputValid", "True", "Valid",
                       f"Deployment {t.deployment} (container {t.container}) and Service {t.service} exist; "
                       f"image manifest {self.spec.artifact.image.split('@')[1][:19]}… found and matches its digest")
        self.to(Phase.VERIFYING, "verifying the image's signed provenance against the namespace's HotfixPolicy")

    # Verifying: the provenance gate, before anyone is asked to approve ------------------------

    def _verifying(self) -> None:
        check = self.obs.provenance
        if check is None:
            self.wait()
            return
        if not check.ok:
            if check.transient:
                attempts = self.status.verify_attempts + 1
                delay = min(60.0, 2.0 ** attempts)
                self.update(verify_attempts=attempts)
                self.condition("ProvenanceVerified", "Unknown", check.reason, f"{check.message}; retry {attempts} "
                               f"in {delay:.0f}s (the gate is never skipped)")
                self.say(f"cannot verify provenance yet: {check.message}; retrying in {delay:.0f}s")
                self.wait(delay)
                return
            self.update(policy=check.policy)
            self._reject(check.reason, check.message, condition="ProvenanceVerified")
            return
        summary = dict(check.summary or {})
        self.update(policy=check.policy, provenance=summary, verify_attempts=0)
        self.stamp(verified=self.now)
        line = provenance_line(summary)
        self.condition("ProvenanceVerified", "True", "Verified", line)
        self.audit("ProvenanceVerified", f"policy {check.policy}: {line}")
        self._enter_queue_or_approval()

    def _target_problem(self) -> tuple[str, str] | None:
        t, ns = self.spec.target, self.release.namespace
        blue, service = self.obs.blue, self.obs.service
        if blue is None:
            return "TargetNotFound", f"Deployment {ns}/{t.deployment} does not exist"
        if blue.container_image(t.container) is None:
            names = [c.get("name") for c in blue.pod_template.get("spec", {}).get("containers", [])]
            return "ContainerNotFound", (f"Deployment {t.deployment} has no container {t.container!r} "
                                         f"(it has: {', '.join(map(str, names))})")
        if service is None:
            return "ServiceNotFound", f"Service {ns}/{t.service} does not exist"
        if not service.selector:
            return "ServiceHasNoSelector", f"Service {t.service} has no selector; blue-green needs one to switch"
        if POD_TEMPLATE_HASH in service.selector:
            return "ServiceAlreadyPinned", (f"Service {t.service} already selects {POD_TEMPLATE_HASH}="
                                            f"{service.selector[POD_TEMPLATE_HASH]}; another rollout controls it — "
                                            "remove that key from its selector first")
        pod_labels = blue.pod_template.get("metadata", {}).get("labels", {})
        if any(pod_labels.get(k) != v for k, v in service.selector.items()):
            return "ServiceDoesNotSelectTarget", (f"Service {t.service} selects {dict(service.selector)}, which does "
                                                  f"not match Deployment {t.deployment}'s pod labels {pod_labels}")
        if t.preview_service and self.obs.preview_service is None:
            return "PreviewServiceNotFound", f"preview Service {ns}/{t.preview_service} does not exist"
        return None

    def _enter_queue_or_approval(self) -> None:
        if self.obs.queue_ahead:
            ahead = self.obs.queue_ahead[0]
            self.update(queued_behind=ahead)
            self.to(Phase.QUEUED, f"waiting for HotfixRelease {ahead} to finish with Deployment "
                    f"{self.spec.target.deployment} (one hotfix per target at a time)")
            self.requeue_after = 5
            return
        self.update(queued_behind=None)
        self.to(Phase.AWAITING_APPROVAL, self._approval_hint(0))

    def _queued(self) -> None:
        if self.obs.queue_ahead:
            if self.obs.queue_ahead[0] != self.status.queued_behind:
                self.update(queued_behind=self.obs.queue_ahead[0])
                self.say(f"waiting for HotfixRelease {self.obs.queue_ahead[0]} to finish with Deployment "
                         f"{self.spec.target.deployment}")
            self.wait(5)
            return
        self._enter_queue_or_approval()

    # AwaitingApproval ---------------------------------------------------------------------------

    def _approval_hint(self, have: int) -> str:
        return (f"needs {REQUIRED_APPROVALS - have} more approval(s) from a user other than "
                f"{self.spec.requested_by} who holds the `approve` verb: kubectl -n {self.release.namespace} "
                f"patch hfr {self.release.name} --type=json -p '[{{\"op\":\"add\",\"path\":"
                f"\"/spec/approval/approvals/-\",\"value\":{{\"approver\":\"<you>\",\"decision\":\"Approve\"}}}}]'")

    def _awaiting_approval(self) -> None:
        approvers: list[str] = []
        ignored: list[str] = []
        for approval in self.spec.approval.approvals:
            who = approval.approver
            if who == self.spec.requested_by:
                ignored.append(f"{who} requested this hotfix and cannot approve it")
                continue
            if approval.decision == "Reject":
                message = f"rejected by {who}" + (f": {approval.comment}" if approval.comment else "")
                self.update(approvals=f"{len(approvers)}/{REQUIRED_APPROVALS}")
                self._reject("ApprovalRejected", message, condition="Approved", actor=who)
                return
            approvers.append(who)
        self.update(approvals=f"{len(approvers)}/{REQUIRED_APPROVALS}")
        note = f" (ignored: {'; '.join(ignored)})" if ignored else ""
        if len(approvers) < REQUIRED_APPROVALS:
            hint = self._approval_hint(len(approvers)) + note
            self.condition("Approved", "False", "AwaitingApproval", hint)
            self.say(hint)
            return
        self.stamp(approved=self.now)
        self.condition("Approved", "True", "Approved", f"approved by {', '.join(approvers)}{note}")
        self.to(Phase.DEPLOYING, f"approved by {', '.join(approvers)}; starting green next to blue",
                reason="Approved", actor=", ".join(approvers))

    # Deploying: pin blue, bring up green ------------------------------------------------------

    def _deploying(self) -> None:
        blue, service, t = self.obs.blue, self.obs.service, self.spec.target
        if blue is None or service is None:
            self._roll_back("TargetDisappeared", f"Deployment {t.deployment} or Service {t.service} was deleted "
                            "during the cutover")
            return
        if self.bg.blue_hash is None:
            if not blue.rolled_out:
                self._check_deadline(self.status.timestamps.approved, "TargetNotStable",
                                     f"Deployment {t.deployment} is itself still rolling out "
                                     f"({blue.updated_replicas}/{blue.replicas} updated, {blue.available_replicas} "
                                     "available); waiting for it before pinning blue")
                return
            self.update_bg(blue_hash=blue.current_hash, blue_image=blue.container_image(t.container),
                           original_selector=dict(service.selector), green_deployment=green_name(self.release),
                           preview_original_selector=dict(self.obs.preview_service.selector)
                           if self.obs.preview_service else None,
                           # pinning keeps the very same pods behind the Service: blue serves, as it did
                           active_hash=blue.current_hash, serving_hash=blue.current_hash, serving_since=self.now)
            self.audit("PinnedBlue", f"Service {t.service} pinned to blue {POD_TEMPLATE_HASH}={blue.current_hash}")
        assert self.bg.original_selector is not None and self.bg.blue_hash is not None
        self._hold_traffic(self.bg.blue_hash, None, "pin the active Service to blue before green starts")
        green = self.obs.green
        if green is None:
            self.act(CreateDeployment(self._green_manifest(blue)))
            self.stamp(green_created=self.now)
            self.condition("GreenAvailable", "False", "Creating", f"creating Deployment {self.bg.green_deployment}")
            self.wait()
            return
        if green.labels.get(LABEL_RELEASE_UID) != self.release.uid:
            self._roll_back("GreenNameConflict", f"Deployment {green.name} exists and was not created by this "
                            "HotfixRelease; refusing to touch it")
            return
        if green.rolled_out and green.current_hash:
            self._promote(green.current_hash, green.available_replicas)
            return
        detail = f"{green.available_replicas}/{green.replicas} replicas available"
        if green.stuck_reason:
            detail += f": {green.stuck_reason}"
        self.condition("GreenAvailable", "False", "Progressing", f"green {green.name}: {detail}")
        self.say(f"waiting for green {green.name} ({detail})")
        self._check_deadline(self.status.timestamps.green_created, "ProgressDeadlineExceeded",
                             f"green {green.name} was not available in time ({detail})")

    def _check_deadline(self, since: datetime.datetime | None, reason: str, message: str) -> None:
        limit = self.spec.rollout.progress_deadline_seconds
        if since is not None and (self.now - since).total_seconds() > limit:
            self._roll_back(reason, f"{message} after {limit}s")
            return
        self.say(message)
        self.wait()

    def _green_manifest(self, blue: Any) -> dict[str, Any]:
        t, name = self.spec.target, self.bg.green_deployment or green_name(self.release)
        marks = {LABEL_ROLE: "green", LABEL_RELEASE_UID: self.release.uid}
        template: dict[str, Any] = copy.deepcopy(dict(blue.pod_template))
        meta = template.setdefault("metadata", {})
        meta["labels"] = {**{k: v for k, v in meta.get("labels", {}).items() if k != POD_TEMPLATE_HASH}, **marks}
        for container in template.get("spec", {}).get("containers", []):
            if container.get("name") == t.container:
                container["image"] = self.spec.artifact.image
        return {
            "apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": name, "namespace": self.release.namespace,
                         "labels": {**marks, LABEL_RELEASE: self.release.name,
                                    "app.kubernetes.io/managed-by": OPERATOR},
                         "annotations": {"hotfix.dev/tag": self.spec.tag,
                                         "hotfix.dev/incident": self.status.incident_id or ""}},
            "spec": {"replicas": max(blue.replicas, 1),
                     "selector": {"matchLabels": {**dict(blue.selector), **marks}},
                     "progressDeadlineSeconds": self.spec.rollout.progress_deadline_seconds,
                     "template": template},
        }

    def _ensure_selector(self, service: str, desired: Mapping[str, str], why: str) -> None:
        current = self.obs.service if service == self.spec.target.service else self.obs.preview_service
        if current is not None and dict(current.selector) != dict(desired):
            self.act(SetServiceSelector(service, dict(desired), why))

    def _pinned(self, pod_hash: str) -> dict[str, str]:
        assert self.bg.original_selector is not None
        return {**self.bg.original_selector, POD_TEMPLATE_HASH: pod_hash}

    def _hold_traffic(self, active_hash: str, preview_hash: str | None, why: str) -> None:
        """Re-assert both Services this release owns: the active one on `active_hash`, the preview on
        `preview_hash` (None: its original selector). A change of the active hash opens a pending switch."""
        t = self.spec.target
        self._ensure_selector(t.service, self._pinned(active_hash), why)
        if t.preview_service:
            preview = self._pinned(preview_hash) if preview_hash else self.bg.preview_original_selector
            if preview is not None:
                self._ensure_selector(t.preview_service, preview, f"preview Service: {why}")
        if self.bg.active_hash != active_hash:
            self.update_bg(active_hash=active_hash, switch_from=self.bg.active_hash, switch_requested=self.now,
                           switch_warned=False)

    def _serving_from(self, pod_hash: str) -> bool:
        """The active Service's EndpointSlices list ready pods, and only pods of `pod_hash`."""
        endpoints = self.obs.endpoint_ips
        return bool(endpoints) and endpoints <= self.obs.pod_ips_by_hash.get(pod_hash, frozenset())

    def _switch(self, to_hash: str, side: str) -> datetime.datetime | None:
        """When traffic was first seen on `side` (pods of `to_hash`), or None while the EndpointSlices do
        not show it yet. The TrafficSwitched audit entry is written here, at the observed time."""
        bg, t = self.bg, self.spec.target
        if bg.switch_requested is None and bg.serving_hash == to_hash:
            return bg.serving_since
        service = self.obs.service
        if service is None or dict(service.selector) != self._pinned(to_hash) or not self._serving_from(to_hash):
            self._report_unconfirmed(to_hash, side)
            return None
        before = bg.switch_from or bg.serving_hash
        self.update_bg(serving_hash=to_hash, serving_since=self.now, switch_from=None, switch_requested=None,
                       switch_warned=False)
        line = (f"Service {t.service}: {POD_TEMPLATE_HASH} {before} -> {to_hash}; its EndpointSlices list only "
                f"{side} pods ({len(self.obs.endpoint_ips)} ready)")
        self.audit("TrafficSwitched", line)
        self.events.append(Event("Normal", "TrafficSwitched", line, OPERATOR))
        return self.now

    def _report_unconfirmed(self, to_hash: str, side: str) -> None:
        """Say how far the switch to `side` has got; past the bound, warn once. Nothing is removed."""
        t, endpoints = self.spec.target, self.obs.endpoint_ips
        on_side = len(endpoints & self.obs.pod_ips_by_hash.get(to_hash, frozenset()))
        detail = f"{on_side} of {len(endpoints)} ready endpoints of Service {t.service} are {side} pods"
        waited = (self.now - (self.bg.switch_requested or self.now)).total_seconds()
        if waited < SWITCH_CONFIRM_SECONDS:
            self.condition("TrafficSwitched", "Unknown", "EndpointsUpdating", detail)
            self.say(f"waiting for Service {t.service}'s EndpointSlices to list only {side} pods ({detail})")
        else:
            message = (f"Service {t.service}'s EndpointSlices still do not list only {side} pods {waited:.0f}s after "
                       f"its selector moved ({detail}); both sides are kept running until they do. Check that "
                       "kube-controller-manager (its EndpointSlice controller) is running and up to date")
            self.condition("TrafficSwitched", "Unknown", "EndpointsNotConfirmed", message)
            self.say(message)
            if not self.bg.switch_warned:
                self.update_bg(switch_warned=True)
                self.events.append(Event("Warning", "EndpointsNotConfirmed", message, OPERATOR))
        self.wait()

    # Promoted: traffic on green, baking ---------------------------------------------------------

    def _promote(self, green_hash: str, available: int) -> None:
        assert self.bg.original_selector is not None
        self.update_bg(green_hash=green_hash)
        self.stamp(green_available=self.now)
        self.condition("GreenAvailable", "True", "Available", f"green {self.bg.green_deployment}: {available} "
                       f"replicas available ({POD_TEMPLATE_HASH}={green_hash})")
        self._hold_traffic(green_hash, green_hash, "switch traffic to green")
        self.to(Phase.PROMOTED, f"switching traffic to green {self.bg.green_deployment}; the "
                f"{self.spec.rollout.bake_seconds}s bake starts when the Service's EndpointSlices list only green "
                "pods, with blue kept warm")

    def _promoted(self) -> None:
        green, t = self.obs.green, self.spec.target
        original, green_hash = self.bg.original_selector, self.bg.green_hash
        if self.obs.service is None or original is None or green_hash is None:
            self._roll_back("TargetDisappeared", f"Service {t.service} was deleted after the switch")
            return
        self._hold_traffic(green_hash, green_hash, "keep traffic on green")
        if green is None or green.available_replicas < green.replicas:
            have = f"{green.available_replicas}/{green.replicas} available" if green else "deleted"
            self._roll_back("GreenUnavailable", f"green {self.bg.green_deployment} became unavailable during the "
                            f"bake ({have})")
            return
        switched = self._switch(green_hash, "green")
        if switched is None:
            return
        self.stamp(promoted=switched)
        self.condition("TrafficSwitched", "True", "EndpointsOnGreen",
                       f"Service {t.service}'s EndpointSlices list only green pods ({len(self.obs.endpoint_ips)})")
        bake_end = switched + datetime.timedelta(seconds=self.spec.rollout.bake_seconds)
        if self.now < bake_end:
            self.say(f"baking on green until {bake_end:%H:%M:%S}Z; blue is kept warm for instant rollback")
            self.wait(min((bake_end - self.now).total_seconds(), ACTIVE_REQUEUE))
            return
        self.stamp(fold_started=self.now)
        self.to(Phase.FINALIZING, f"bake passed; folding {self.spec.artifact.image.split('@')[1][:19]}… into "
                f"Deployment {t.deployment}")

    # Finalizing: fold green into the original Deployment, restore its shape -----------------------

    def _finalizing(self) -> None:
        blue, t = self.obs.blue, self.spec.target
        original, green_hash = self.bg.original_selector, self.bg.green_hash
        assert original is not None and green_hash is not None
        if blue is None or self.obs.service is None:
            self._fail("TargetDisappeared", f"Deployment {t.deployment} or Service {t.service} was deleted while "
                       "folding; traffic was on green, which is left running")
            return
        if self.bg.folded_hash is None:
            self._hold_traffic(green_hash, green_hash, "keep traffic on green")
            if not self._serving_from(green_hash):
                # rolling the Deployment replaces blue's pods: only while green is seen serving
                self._report_unconfirmed(green_hash, "green")
                return
            if blue.container_image(t.container) != self.spec.artifact.image:
                self.act(SetContainerImage(t.deployment, t.container, self.spec.artifact.image))
                self.say(f"rolling Deployment {t.deployment} to the hotfix image; traffic stays on green")
                self.wait()
                return
            # Its template now names the hotfix image (checked above), so once its controller has caught up
            # and every replica is updated and available, the current ReplicaSet runs the hotfix. (When blue
            # already ran this very image, that is blue's own ReplicaSet, and nothing needs to roll.)
            if not (blue.rolled_out and blue.current_hash):
                started = self.status.timestamps.fold_started or self.now
                if (self.now - started).total_seconds() > self.spec.rollout.progress_deadline_seconds:
                    self._fail("FoldTimedOut", f"Deployment {t.deployment} did not finish rolling out the hotfix "
                               f"image ({blue.available_replicas}/{blue.replicas} available"
                               f"{': ' + blue.stuck_reason if blue.stuck_reason else ''}); traffic stays on green "
                               f"{self.bg.green_deployment}, which runs the hotfix — fix the Deployment, then move "
                               f"Service {t.service}'s selector back to {original} and delete the green Deployment")
                    return
                self.say(f"waiting for Deployment {t.deployment} to finish rolling out the hotfix image "
                         f"({blue.updated_replicas}/{blue.replicas} updated)")
                self.wait()
                return
            self.update_bg(folded_hash=blue.current_hash)
        folded = self.bg.folded_hash
        assert folded is not None
        side = f"Deployment {t.deployment}'s"
        if self.obs.green is not None:
            self._hold_traffic(folded, folded, "move traffic to the folded Deployment")
            switched = self._switch(folded, side)
            if switched is None:
                return
            self.stamp(folded=switched)
            remove_at = switched + datetime.timedelta(seconds=self.spec.rollout.scale_down_delay_seconds)
            if self.now < remove_at:
                self.say(f"traffic is on Deployment {t.deployment}; removing green at {remove_at:%H:%M:%S}Z")
                self.wait(min((remove_at - self.now).total_seconds(), ACTIVE_REQUEUE))
                return
        if self._tear_down_green(folded, side):
            return
        self.stamp(completed=self.now)
        self.condition("TrafficSwitched", "True", "Folded", f"Deployment {t.deployment} runs "
                       f"{self.spec.artifact.image.split('@')[1][:19]}… and Service {t.service} has its original "
                       "selector again")
        self.to(Phase.SUCCEEDED, f"hotfix {self.spec.tag} is live in Deployment {t.deployment}; the cluster is back "
                "in its original shape", reason="Succeeded")

    def _green_pods_left(self) -> bool:
        return self.obs.green_pod_count > 0

    def _tear_down_green(self, serving_hash: str, side: str) -> bool:
        """Delete green once `side` is seen serving, wait for its pods to go, give the Services their
        original selectors back, and see `side` serving behind them. True while any of that is under way."""
        green, t = self.obs.green, self.spec.target
        # With no Service there is nothing to route; otherwise never delete what may still serve.
        serving = self.obs.service is None or self._serving_from(serving_hash)
        if green is not None and green.labels.get(LABEL_RELEASE_UID) == self.release.uid:
            if not serving:
                self._report_unconfirmed(serving_hash, side)
                return True
            self.act(DeleteDeployment(green.name, self.release.uid))
            self.say(f"removing green {green.name}")
        elif self._green_pods_left():
            self.say("waiting for green pods to terminate")
        elif self._restore_selectors():
            self.say(f"restoring Service {t.service}'s original selector")
        elif not serving:
            self.say(f"waiting for Service {t.service}'s EndpointSlices to list {side} pods under its original "
                     "selector")
        else:
            return False
        self.wait()
        return True

    def _restore_selectors(self) -> bool:
        """Emit what is needed to give both Services their original selectors; True while not done."""
        t = self.spec.target
        pending = False
        if self.bg.original_selector is not None and self.obs.service is not None and \
                dict(self.obs.service.selector) != self.bg.original_selector:
            self.act(SetServiceSelector(t.service, self.bg.original_selector, "restore the original selector"))
            pending = True
        if t.preview_service and self.bg.preview_original_selector is not None and \
                self.obs.preview_service is not None and \
                dict(self.obs.preview_service.selector) != self.bg.preview_original_selector:
            self.act(SetServiceSelector(t.preview_service, self.bg.preview_original_selector,
                                        "restore the preview Service"))
            pending = True
        return pending

    def _fail(self, reason: str, message: str) -> None:
        self.to(Phase.FAILED, message, reason=reason, warning=True)

    # RollingBack --------------------------------------------------------------------------------

    def _rolling_back(self) -> None:
        original, blue_hash = self.bg.original_selector, self.bg.blue_hash
        if original is not None and blue_hash is not None:
            green = self.obs.green
            if (green is not None and green.labels.get(LABEL_RELEASE_UID) == self.release.uid) or \
                    self._green_pods_left():
                self._hold_traffic(blue_hash, None, "move traffic back to blue")
            if self.obs.service is not None:
                restored = self._switch(blue_hash, "blue")
                if restored is None:
                    return
                self.stamp(blue_restored=restored)
            if self._tear_down_green(blue_hash, "blue"):
                return
        started = self.status.condition("RolledBack")
        cause = started.message.removeprefix("rolling back: ") if started else self.status.message
        self.stamp(completed=self.now)
        self.condition("RolledBack", "True", "RolledBack", f"blue serves all traffic again; green removed ({cause})")
        self.to(Phase.ROLLED_BACK, f"rolled back: blue serves all traffic; cause: {cause}", reason="RolledBack",
                warning=True)

    # kstatus summary --------------------------------------------------------------------------

    def _summarise(self) -> None:
        phase = self.status.phase
        if phase is None:
            return
        message = self.status.message
        ready: ConditionStatus = "True" if phase == Phase.SUCCEEDED else "False"
        self.condition("Ready", ready, phase.value, message)
        self.condition("Reconciling", "False" if phase.terminal else "True", phase.value, message)
        stalled = phase in (Phase.REJECTED, Phase.ROLLED_BACK, Phase.FAILED)
        self.condition("Stalled", "True" if stalled else "False", phase.value, message)


def provenance_line(summary: Mapping[str, Any]) -> str:
    """One line a person reads: who signed, which builder, which source and commit."""
    signers = ", ".join(str(s.get("signer")) for s in summary.get("signers", []))
    commit = str(summary.get("commitSha", ""))
    predicates = ", ".join(summary.get("predicateTypes", []))
    return (f"signed by {signers or 'nobody'}; built by {summary.get('builderId')} from "
            f"{summary.get('sourceRepository')}@{commit[:12]}; predicates {predicates}")


# Exposed for the shell: which of its objects the release still holds, for safe deletion.
def holds_production(status: Status) -> bool:
    return status.phase is not None and status.phase.holds_target


__all__ = ["Decision", "green_name", "holds_production", "incident_id", "needs_image_check",
           "needs_provenance_check", "provenance_line", "reconcile"]
