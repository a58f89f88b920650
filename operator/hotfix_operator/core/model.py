"""The HotfixRelease as the core sees it: a validated spec and the status the operator owns.

The API server already enforces the schema and CEL rules; these models give the core typed access
and keep unknown or hostile shapes (a hand-edited object, an older schema) from reaching the logic.
"""

from __future__ import annotations

import datetime
from typing import Any, Literal

from pydantic import Field, computed_field

from hotfix_operator.api import ANNOTATION_REQUESTED_THROUGH, ConditionType, Phase, release_tag
from hotfix_operator.core.base import Camel as _Camel
from hotfix_operator.core.check_model import Checks, CheckState
from hotfix_operator.core.notice_model import NoticeState

# -- spec ------------------------------------------------------------------------------------------


class Target(_Camel):
    deployment: str
    service: str
    container: str
    preview_service: str | None = None


class Artifact(_Camel):
    image: str
    source_repository: str
    evidence: str | None = None


class Approval(_Camel):
    """As admission proved it: `approver` is its author, `groups` are the author's groups as the API
    server saw them, and `group` (a claim) is one of them."""

    approver: str
    decision: Literal["Approve", "Reject"]
    comment: str = ""
    group: str | None = None
    groups: tuple[str, ...] = ()

    def in_group(self, group: str) -> bool:
        return self.group == group or group in self.groups


class Abort(_Camel):
    by: str
    reason: str


class Undo(_Camel):
    """Put the version that ran before back, after the hotfix succeeded (admission checks `by`). When the
    HotfixPolicy wants an undo approved, approvers other than `by` append theirs to `approvals`, in the shape
    and under the identity rules of spec.approval's (admission proves each author and groups)."""

    by: str
    reason: str
    approvals: tuple[Approval, ...] = ()


class ApprovalSpec(_Camel):
    approvals: tuple[Approval, ...] = ()


class Rollout(_Camel):
    progress_deadline_seconds: int = 600
    bake_seconds: int = 60
    scale_down_delay_seconds: int = 30
    auto_rollback: bool = True


class Spec(_Camel):
    version: str
    commit_sha: str
    justification: str
    ticket_url: str
    severity: Literal["P0", "P1"]
    risk_level: Literal["low", "medium", "high"]
    requested_by: str
    target: Target
    artifact: Artifact
    approval: ApprovalSpec = ApprovalSpec()
    abort: Abort | None = None
    undo: Undo | None = None
    rollout: Rollout = Rollout()
    checks: Checks = Checks()
    # a rehearsal: the real path up to the pre-promotion checks, then green is removed (see core.drill)
    drill: bool = False

    @property
    def tag(self) -> str:
        return release_tag(self.version)


class Release(_Camel):
    """What the core needs of the object's metadata plus its spec."""

    name: str
    namespace: str
    uid: str
    generation: int
    created: datetime.datetime
    spec: Spec
    # the GitOps identity admission proved filed this on the requester's behalf (annotation)
    requested_through: str | None = None

    @classmethod
    def from_body(cls, body: dict[str, Any]) -> Release:
        meta = body["metadata"]
        return cls(
            name=meta["name"],
            namespace=meta["namespace"],
            uid=meta.get("uid", ""),
            generation=meta.get("generation", 1),
            created=meta["creationTimestamp"],
            spec=body["spec"],
            requested_through=(meta.get("annotations") or {}).get(ANNOTATION_REQUESTED_THROUGH),
        )


# -- status ----------------------------------------------------------------------------------------


class Condition(_Camel):
    type: str
    status: Literal["True", "False", "Unknown"]
    reason: str
    message: str = ""
    observed_generation: int | None = None
    last_transition_time: datetime.datetime | None = None


class Timestamps(_Camel):
    created: datetime.datetime | None = None
    verified: datetime.datetime | None = None
    approved: datetime.datetime | None = None
    green_created: datetime.datetime | None = None
    green_available: datetime.datetime | None = None
    # when the active Service's EndpointSlices were first seen listing only green pods: the bake starts here
    promoted: datetime.datetime | None = None
    fold_started: datetime.datetime | None = None
    # when they were first seen listing only the folded Deployment's pods: the scale-down delay starts here
    folded: datetime.datetime | None = None
    rollback_started: datetime.datetime | None = None
    # when they were first seen listing only blue's pods again during a rollback
    blue_restored: datetime.datetime | None = None
    completed: datetime.datetime | None = None


class BlueGreen(_Camel):
    """Everything needed to finish or undo the cutover after a restart."""

    blue_hash: str | None = None
    blue_image: str | None = None
    # the Deployment's deployment.kubernetes.io/revision when blue was pinned
    blue_revision: str | None = None
    original_selector: dict[str, str] | None = None
    preview_original_selector: dict[str, str] | None = None
    green_deployment: str | None = None
    green_hash: str | None = None
    folded_hash: str | None = None
    # the pod-template-hash the active Service's selector was last pointed at (decided)
    active_hash: str | None = None
    # the hash its EndpointSlices were last seen serving from, and since when (observed)
    serving_hash: str | None = None
    serving_since: datetime.datetime | None = None
    # a selector change not yet seen on the EndpointSlices: from which hash, since when, and whether
    # the operator already warned that it is taking too long
    switch_from: str | None = None
    switch_requested: datetime.datetime | None = None
    switch_warned: bool = False


class ObservedApproval(_Camel):
    """An approval as the operator first saw it: its time is the operator's, never the client's."""

    approver: str
    decision: Literal["Approve", "Reject"]
    observed_at: datetime.datetime
    group: str | None = None
    # the SubjectAccessReview when it was last counted: does the author still hold `approve`?
    allowed: bool | None = None


class UndoTimes(_Camel):
    """When each step of an undo was first seen (a timestamp, once written, is a fact)."""

    requested: datetime.datetime | None = None
    # an undo the HotfixPolicy wants approved: when its last needed approval was counted
    approved: datetime.datetime | None = None
    previous_created: datetime.datetime | None = None
    previous_available: datetime.datetime | None = None
    # the active Service's EndpointSlices first listed only the previous version's pods: the bake starts here
    switched: datetime.datetime | None = None
    fold_started: datetime.datetime | None = None
    folded: datetime.datetime | None = None
    gave_up: datetime.datetime | None = None
    completed: datetime.datetime | None = None


class UndoStatus(_Camel):
    """An undo of a Succeeded hotfix (see core.undo): the reverse blue-green run has its own BlueGreen,
    whose "blue" is the hotfixed Deployment and whose "green" is the helper running the previous version,
    so status.blueGreen and status.checks keep the forward cutover's record untouched."""

    by: str
    reason: str
    # AwaitingApproval: the HotfixPolicy wants it approved first (the hotfix serves meanwhile); Accepted: under
    # way; Refused: nothing changed (the message says why and what to do)
    decision: Literal["AwaitingApproval", "Accepted", "Refused"]
    message: str = ""
    window_ends: datetime.datetime | None = None
    # approvals of the undo (spec.undo.approvals): how many it needs, who counted, when each was first seen
    approvals_required: int | None = None
    approved_by: tuple[str, ...] = ()
    observed_approvals: tuple[ObservedApproval, ...] = ()
    # what comes back (the forward cutover's record of blue) and what it replaces
    previous_image: str | None = None
    previous_hash: str | None = None
    previous_revision: str | None = None
    hotfix_image: str | None = None
    # spec.abort was already set when the undo was accepted (ignored then, so it does not stop the undo)
    abort_seen: bool = False
    # where the undo stands: Previous (bring it up, check it), Switch (traffic moving/baking on it),
    # Fold (the Deployment rolls back to it), Return (gave up: back to the hotfix), Done
    step: Literal["Previous", "Switch", "Fold", "Return", "Done"] = "Previous"
    failure: str | None = None
    blue_green: BlueGreen = BlueGreen()
    # the pre-promotion checks run again against the previous version: fresh copies, status.checks untouched
    checks: tuple[CheckState, ...] = ()
    times: UndoTimes = UndoTimes()


class DrillStage(_Camel):
    """One stage of the SLA's split, timed by a drill: seconds is None for a stage the operator cannot
    see (it happens before filing) or that the drill did not reach."""

    name: str
    budget_seconds: float
    seconds: float | None = None
    within_budget: bool | None = None
    note: str = ""


class DrillStatus(_Camel):
    """A drill (spec.drill): whether it needs approvals (the HotfixPolicy's approvals.drills, fixed when
    filed), the SLA its stage budgets are scaled to, and once decided its outcome and stage times."""

    approvals: Literal["Required", "NotRequired"] = "NotRequired"
    sla_seconds: int = 30 * 60
    outcome: Literal["Passed", "Failed"] | None = None
    reason: str | None = None
    message: str = ""
    # when the outcome was decided (the pre-promotion checks ended, or something failed); green's removal follows
    concluded: datetime.datetime | None = None
    stages: tuple[DrillStage, ...] = ()


class StepRetry(_Camel):
    """A follow-up step's last failure: retried at retry_at (transient: backing off; permanent: slowly)."""

    failure: Literal["Transient", "Permanent"]
    attempts: int = 0
    retry_at: datetime.datetime | None = None
    reason: str = ""
    last_error: str = ""


class _FollowupArea(_Camel):
    state: str | None = None
    # step name -> its last failure, while it has not succeeded since
    retries: dict[str, StepRetry] | None = None


class ReleaseArea(_FollowupArea):
    """The annotated tag and the GitHub release with its evidence assets."""

    tag: str | None = None
    commit: str | None = None
    tagged: bool | None = None
    url: str | None = None
    id: int | None = None
    assets: dict[str, str] | None = None  # name -> sha256:<hex> of the bytes uploaded
    # the release notes carry the "Undone at ... by ... because ..." line
    undo_noted: bool | None = None


class BackportArea(_FollowupArea):
    branch: str | None = None
    base: str | None = None
    pull_request: str | None = None
    number: int | None = None
    draft: bool | None = None
    conflicted_files: tuple[str, ...] | None = None


class PostmortemArea(_FollowupArea):
    due_at: datetime.datetime | None = None  # fixed on first sight after promotion
    checked_at: datetime.datetime | None = None
    filed: bool | None = None
    path: str | None = None
    branch: str | None = None
    pull_request: str | None = None
    number: int | None = None
    issue: str | None = None  # the one overdue issue
    issue_number: int | None = None
    # the post-mortem pull request was told of an undo (its comment, or "none" with no pull request)
    undo_comment: str | None = None


FollowupArea = ReleaseArea | BackportArea | PostmortemArea


class AuditEntry(_Camel):
    time: datetime.datetime
    actor: str
    action: str
    detail: str = ""


class Status(_Camel):
    phase: Phase | None = None
    message: str = ""
    observed_generation: int | None = None
    incident_id: str | None = None
    tag: str | None = None
    # who approved (counted, not the requester) and how many approvals the release needs
    approved_by: tuple[str, ...] = ()
    approvals_required: int | None = None
    observed_approvals: tuple[ObservedApproval, ...] = ()
    # who or what the release still waits for before it deploys, in one line (a printer column)
    waiting_for: str | None = None
    wait_timer_ends: datetime.datetime | None = None
    expires_at: datetime.datetime | None = None
    requested_through: str | None = None
    # the admission policy this release was filed under (see core.governance.AdmissionCheck)
    admission_fingerprint: str | None = None
    queued_behind: str | None = None
    sla_deadline: datetime.datetime | None = None
    # what the HotfixPolicy said to do on a breach, fixed when filed (the policy is not read after approval)
    sla_on_breach: Literal["Continue", "StopBeforeSwitch"] | None = None
    # the HotfixPolicy's undo rules, fixed when filed: how long after Succeeded spec.undo is accepted, and
    # how many approvals an undo needs (see core.undo)
    undo_window_seconds: int | None = None
    undo_approvals_required: int | None = None
    # set once the undo window has passed with no spec.undo (the CRD then refuses one)
    undo_window_closed: bool | None = None
    policy: str | None = None
    # what the provenance gate verified: signer, builder, source, commit, predicate types
    provenance: dict[str, Any] | None = None
    verify_attempts: int = 0
    # after promotion: publishing, backport and post-mortem (see core.followup)
    release: ReleaseArea | None = None
    backport: BackportArea | None = None
    postmortem: PostmortemArea | None = None
    timestamps: Timestamps = Timestamps()
    blue_green: BlueGreen = BlueGreen()
    # every check this release runs (the HotfixPolicy's and its own), fixed when verified, with its progress
    checks: tuple[CheckState, ...] = ()
    # spec.undo, once judged (see core.undo)
    undo: UndoStatus | None = None
    # what people were told (the HotfixPolicy's notification receivers), by dedupe key (see core.notify)
    notifications: tuple[NoticeState, ...] = ()
    # spec.drill: its approval rule, outcome and stage times against the SLA budget (see core.drill)
    drill: DrillStatus | None = None
    conditions: tuple[Condition, ...] = ()
    audit: tuple[AuditEntry, ...] = Field(default=())

    @computed_field  # type: ignore[prop-decorator]
    @property
    def approvals(self) -> str | None:
        """"have/needed", the printer column kubectl shows."""
        if self.approvals_required is None:
            return None
        return f"{len(self.approved_by)}/{self.approvals_required}"

    @classmethod
    def from_body(cls, body: dict[str, Any]) -> Status:
        return cls.model_validate(body.get("status") or {})

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = self.model_dump(by_alias=True, exclude_none=True, mode="json")
        return data

    def condition(self, type_: ConditionType) -> Condition | None:
        return next((c for c in self.conditions if c.type == type_), None)
