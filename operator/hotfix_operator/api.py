"""The HotfixRelease API's vocabulary, in one place: its group and names, the labels, annotations and
finalizer the operator writes, the actor it records, its phases, condition types and reasons.

Everything that reads or writes these names (core, shell, tests) imports them from here, so a name
changes in one line. Pure: no imports beyond the standard library.
"""

from __future__ import annotations

import enum

API_GROUP = "hotfix.dev"
API_VERSION = "v1alpha1"
KIND = "HotfixRelease"
PLURAL = "hotfixreleases"
POLICY_PLURAL = "hotfixpolicies"

# The actor the operator records in the audit trail and Events when it acts on its own.
OPERATOR = "hotfix-operator"
# The audit trail in status keeps this many entries (the CRD allows 100).
AUDIT_LIMIT = 50

# Labels: the one Kubernetes sets on ReplicaSets and pods, and the ones green carries.
POD_TEMPLATE_HASH = "pod-template-hash"
LABEL_RELEASE = "hotfix.dev/release"
LABEL_RELEASE_UID = "hotfix.dev/release-uid"
LABEL_ROLE = "hotfix.dev/role"
LABEL_MANAGED_BY = "app.kubernetes.io/managed-by"
ROLE_GREEN = "green"
# an undo's helper Deployment: the version that ran before the hotfix, beside it
ROLE_PREVIOUS = "previous"
# the Deployment controller's revision counter, recorded at Deploying
ANNOTATION_REVISION = "deployment.kubernetes.io/revision"
# the label the EndpointSlice controller puts on a Service's slices
LABEL_SERVICE_NAME = "kubernetes.io/service-name"
# on a HotfixRelease the operator has nothing left to do for, ever: it gets no daemon, even after a restart
LABEL_SETTLED = "hotfix.dev/settled"
# Annotations on green, for a person reading `kubectl get deploy -o yaml`.
ANNOTATION_TAG = "hotfix.dev/tag"
ANNOTATION_INCIDENT = "hotfix.dev/incident"
# On a HotfixRelease a GitOps tool files for someone else: the tool's identity (admission checks it).
ANNOTATION_REQUESTED_THROUGH = "hotfix.dev/requested-through"
# Kopf's own bookkeeping (progress, diff base) and the finalizer that rolls back before deletion.
KOPF_PREFIX = "hotfix.dev"
FINALIZER = "hotfix.dev/cleanup"


def release_tag(version: str) -> str:
    """The git tag (and GitHub release) a hotfix version is published under."""
    return f"v{version}"


class Phase(enum.StrEnum):
    PENDING = "Pending"
    VERIFYING = "Verifying"
    QUEUED = "Queued"
    AWAITING_APPROVAL = "AwaitingApproval"
    DEPLOYING = "Deploying"
    # green is available behind the preview Service; the pre-promotion checks run; traffic stays on blue
    PRE_PROMOTION = "PrePromotion"
    PROMOTED = "Promoted"
    FINALIZING = "Finalizing"
    SUCCEEDED = "Succeeded"
    REJECTED = "Rejected"
    ROLLING_BACK = "RollingBack"
    ROLLED_BACK = "RolledBack"
    FAILED = "Failed"
    EXPIRED = "Expired"
    # spec.undo on a Succeeded release: the previous version comes back through the blue-green path
    UNDOING = "Undoing"
    UNDONE = "Undone"
    # the undo gave up (a check failed, the previous version did not come up, it was aborted): the hotfix serves
    UNDO_FAILED = "UndoFailed"
    # spec.drill: the real path up to the pre-promotion checks, then green is removed (traffic never moves)
    DRILL_ENDING = "DrillEnding"
    DRILL_PASSED = "DrillPassed"
    DRILL_FAILED = "DrillFailed"

    @property
    def terminal(self) -> bool:
        return self in (Phase.SUCCEEDED, Phase.REJECTED, Phase.ROLLED_BACK, Phase.FAILED, Phase.EXPIRED,
                        Phase.UNDONE, Phase.UNDO_FAILED, Phase.DRILL_PASSED, Phase.DRILL_FAILED)

    @property
    def holds_target(self) -> bool:
        """Phases in which this release owns the target's traffic and objects."""
        return self in (Phase.DEPLOYING, Phase.PRE_PROMOTION, Phase.PROMOTED, Phase.FINALIZING, Phase.ROLLING_BACK,
                        Phase.UNDOING, Phase.DRILL_ENDING)

    @property
    def stalled(self) -> bool:
        """Terminal phases that need a person (kstatus Stalled)."""
        return self in (Phase.REJECTED, Phase.ROLLED_BACK, Phase.FAILED, Phase.EXPIRED, Phase.UNDO_FAILED,
                        Phase.DRILL_FAILED)


class CheckStage(enum.StrEnum):
    """When a check runs: before any traffic moves (through the preview Service), or during the bake."""

    PRE_PROMOTION = "prePromotion"
    POST_PROMOTION = "postPromotion"


class CheckPhase(enum.StrEnum):
    PENDING = "Pending"
    RUNNING = "Running"
    PASSED = "Passed"
    FAILED = "Failed"
    # could not be evaluated more often in a row than its consecutiveErrorLimit allows
    ERROR = "Error"

    @property
    def finished(self) -> bool:
        return self in (CheckPhase.PASSED, CheckPhase.FAILED, CheckPhase.ERROR)


class ConditionType(enum.StrEnum):
    # kstatus summary, for Flux `wait: true`, Argo CD and `kubectl wait`
    READY = "Ready"
    RECONCILING = "Reconciling"
    STALLED = "Stalled"
    # the lifecycle
    INPUT_VALID = "InputValid"
    PROVENANCE_VERIFIED = "ProvenanceVerified"
    APPROVED = "Approved"
    GREEN_AVAILABLE = "GreenAvailable"
    TRAFFIC_SWITCHED = "TrafficSwitched"
    # one per stage of checks (spec.checks and the HotfixPolicy's)
    PRE_PROMOTION_CHECKS = "PrePromotionChecks"
    POST_PROMOTION_CHECKS = "PostPromotionChecks"
    ROLLED_BACK = "RolledBack"
    SLA_BREACHED = "SLABreached"
    # the follow-ups after the bake
    RELEASED = "Released"
    BACKPORT_OPENED = "BackportOpened"
    POSTMORTEM_FILED = "PostmortemFiled"
    POSTMORTEM_COMPLETE = "PostmortemComplete"
    POSTMORTEM_OVERDUE = "PostmortemOverdue"
    # spec.undo: accepted, refused, done or given up; and the published record telling of it
    UNDONE = "Undone"
    UNDO_CHECKS = "UndoChecks"
    UNDO_PUBLISHED = "UndoPublished"
    # an undo the HotfixPolicy wants approved (undo.approvalsRequired), and the post-mortem told of the undo
    UNDO_APPROVED = "UndoApproved"
    UNDO_POSTMORTEM_NOTED = "UndoPostmortemNoted"


class Reason(enum.StrEnum):
    """Reasons the lifecycle itself gives (conditions, Events, audit). The provenance gate's and the
    registry's reasons pass through as they come (see provenance.reasons)."""

    ACCEPTED = "Accepted"
    VALID = "Valid"
    VERIFIED = "Verified"
    ABORTED = "Aborted"
    ABORT_IGNORED = "AbortIgnored"
    TARGET_NOT_FOUND = "TargetNotFound"
    CONTAINER_NOT_FOUND = "ContainerNotFound"
    SERVICE_NOT_FOUND = "ServiceNotFound"
    SERVICE_HAS_NO_SELECTOR = "ServiceHasNoSelector"
    SERVICE_ALREADY_PINNED = "ServiceAlreadyPinned"
    SERVICE_DOES_NOT_SELECT_TARGET = "ServiceDoesNotSelectTarget"
    PREVIEW_SERVICE_NOT_FOUND = "PreviewServiceNotFound"
    AWAITING_APPROVAL = "AwaitingApproval"
    APPROVED = "Approved"
    APPROVAL_REJECTED = "ApprovalRejected"
    TARGET_DISAPPEARED = "TargetDisappeared"
    TARGET_NOT_STABLE = "TargetNotStable"
    CREATING = "Creating"
    PROGRESSING = "Progressing"
    AVAILABLE = "Available"
    GREEN_NAME_CONFLICT = "GreenNameConflict"
    PROGRESS_DEADLINE_EXCEEDED = "ProgressDeadlineExceeded"
    GREEN_UNAVAILABLE = "GreenUnavailable"
    TRAFFIC_SWITCHED = "TrafficSwitched"
    SELECTOR_UNRECORDED = "SelectorUnrecorded"
    FOLD_UNRECORDED = "FoldUnrecorded"
    ENDPOINTS_UPDATING = "EndpointsUpdating"
    ENDPOINTS_NOT_CONFIRMED = "EndpointsNotConfirmed"
    ENDPOINTS_ON_GREEN = "EndpointsOnGreen"
    FOLDED = "Folded"
    FOLD_TIMED_OUT = "FoldTimedOut"
    ROLLED_BACK = "RolledBack"
    SUCCEEDED = "Succeeded"
    EXPIRED = "Expired"
    SLA_BREACHED = "SLABreached"
    WAIT_TIMER = "WaitTimer"
    ADMISSION_POLICY_MISSING = "AdmissionPolicyMissing"
    ADMISSION_POLICY_CHANGED = "AdmissionPolicyChanged"
    APPROVAL_NOT_AUTHORIZED = "ApprovalNotAuthorized"
    # checks
    CHECK_FAILED = "CheckFailed"
    CHECK_TARGET_NOT_ALLOWED = "CheckTargetNotAllowed"
    CHECK_INVALID = "CheckInvalid"
    CHECKS_RUNNING = "ChecksRunning"
    CHECKS_PASSED = "ChecksPassed"
    # follow-ups
    TAGGED = "Tagged"
    PUBLISHED = "Published"
    NOT_NEEDED = "NotNeeded"
    OPENED_WITH_CONFLICTS = "OpenedWithConflicts"
    FILED = "Filed"
    PENDING = "Pending"
    COMPLETE = "Complete"
    OVERDUE = "Overdue"
    FOLLOWUP_DELAYED = "FollowupDelayed"
    # undo
    UNDO_REQUESTED = "UndoRequested"
    UNDO_REFUSED = "UndoRefused"
    UNDO_WINDOW_CLOSED = "UndoWindowClosed"
    UNDO_NEEDS_APPROVAL = "UndoNeedsApproval"
    UNDO_TARGET_CHANGED = "UndoTargetChanged"
    UNDO_FAILED = "UndoFailed"
    UNDONE = "Undone"
    UNDO_NOTED = "UndoNoted"
    UNDO_APPROVED = "UndoApproved"
    UNDO_REJECTED = "UndoRejected"
    UNDO_POSTMORTEM_NOTED = "UndoPostmortemNoted"
    # drills
    DRILL_APPROVAL_SKIPPED = "DrillApprovalSkipped"
    DRILL_STOPPED_BEFORE_SWITCH = "DrillStoppedBeforeSwitch"
    DRILL_PASSED = "DrillPassed"
    DRILL_FAILED = "DrillFailed"
