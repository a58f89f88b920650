"""The hotfix lifecycle as a pure function: (release, status, observations) -> decision.

No I/O happens here. The shell writes the returned status *before* it executes the actions, and
every phase re-asserts the state it needs (a selector, a Deployment) from what it observes, so a
crash between any two steps is repaired by the next reconcile. A phase becomes terminal only when
observations confirm the end state, never in the same decision that still has actions to run.

The phases live in core.intake (before production changes) and core.cutover (while the release
holds production); this module dispatches, handles abort, and keeps the kstatus summary.
"""

from __future__ import annotations

import datetime
from collections.abc import Callable

from hotfix_operator.api import ConditionType, Phase, Reason
from hotfix_operator.core import cutover, intake
from hotfix_operator.core.actions import Event
from hotfix_operator.core.approvals import REQUIRED_APPROVALS
from hotfix_operator.core.conditions import ConditionStatus
from hotfix_operator.core.model import Release, Status
from hotfix_operator.core.observations import Observations
from hotfix_operator.core.step import Decision, Step

SLA = datetime.timedelta(minutes=30)

PHASES: dict[Phase, Callable[[Step], None]] = {
    Phase.PENDING: intake.pending,
    Phase.VERIFYING: intake.verifying,
    Phase.QUEUED: intake.queued,
    Phase.AWAITING_APPROVAL: intake.awaiting_approval,
    Phase.DEPLOYING: cutover.deploying,
    Phase.PROMOTED: cutover.promoted,
    Phase.FINALIZING: cutover.finalizing,
    Phase.ROLLING_BACK: cutover.rolling_back,
}
BEFORE_PRODUCTION = (Phase.PENDING, Phase.VERIFYING, Phase.QUEUED, Phase.AWAITING_APPROVAL)


def reconcile(release: Release, status: Status, obs: Observations) -> Decision:
    s = Step(release, status, obs.now, obs=obs)
    s.update(observed_generation=release.generation)
    if s.status.phase is None:
        initialise(s)
    elif not (release.spec.abort and handle_abort(s, s.status.phase)):
        handler = PHASES.get(s.status.phase)
        if handler is not None:
            handler(s)
    summarise(s)
    return s.decision()


def initialise(s: Step) -> None:
    created = s.release.created
    s.update(incident_id=incident_id(created), tag=s.spec.tag, sla_deadline=created + SLA,
             approvals_required=REQUIRED_APPROVALS)
    s.stamp(created=created)
    s.enter(Phase.PENDING, f"checking the target and the image for hotfix {s.spec.tag}", reason=Reason.ACCEPTED,
            actor=s.spec.requested_by)


def handle_abort(s: Step, phase: Phase) -> bool:
    """True when abort decided this reconcile; in Finalizing it is recorded once and ignored."""
    why = "spec.abort was set"
    if phase in BEFORE_PRODUCTION:
        s.reject(Reason.ABORTED, f"{why} before deployment; nothing in production changed", actor="spec.abort")
        return True
    if phase in (Phase.DEPLOYING, Phase.PROMOTED):
        s.roll_back(Reason.ABORTED, f"{why}; moving traffic back to blue", actor="spec.abort")
        return True
    if phase == Phase.FAILED and s.bg.original_selector is not None and \
            s.status.condition(ConditionType.ROLLED_BACK) is None:
        s.roll_back(Reason.ABORTED, f"{why} after a failure; restoring blue", actor="spec.abort")
        return True
    if phase == Phase.FINALIZING and not any(e.action == Reason.ABORT_IGNORED for e in s.status.audit):
        s.add_audit(Reason.ABORT_IGNORED, "the hotfix is already being folded into the Deployment; abort no longer "
                    "applies — ship a new HotfixRelease to change it again", actor="spec.abort")
        s.events.append(Event("Warning", Reason.ABORT_IGNORED, "abort arrived after promotion was final",
                              "spec.abort"))
    return False


def summarise(s: Step) -> None:
    """The kstatus conditions every tool reads: Ready, Reconciling, Stalled."""
    phase = s.status.phase
    if phase is None:
        return
    message = s.status.message
    ready: ConditionStatus = "True" if phase == Phase.SUCCEEDED else "False"
    s.set_condition(ConditionType.READY, ready, phase.value, message)
    s.set_condition(ConditionType.RECONCILING, "False" if phase.terminal else "True", phase.value, message)
    s.set_condition(ConditionType.STALLED, "True" if phase.stalled else "False", phase.value, message)


def incident_id(created: datetime.datetime) -> str:
    return "INC-" + created.astimezone(datetime.UTC).strftime("%Y%m%d-%H%M%S")


# -- what the shell asks ---------------------------------------------------------------------------


def needs_image_check(status: Status) -> bool:
    return status.phase == Phase.PENDING


def needs_provenance_check(status: Status) -> bool:
    return status.phase == Phase.VERIFYING


def holds_production(status: Status) -> bool:
    """The release owns the target's traffic and objects: deleting it must roll back first."""
    return status.phase is not None and status.phase.holds_target


def is_finished(decision: Decision) -> bool:
    """Nothing left for the lifecycle, ever: terminal with no action pending. Failed is not finished:
    a person may still set spec.abort to roll back."""
    phase = decision.status.phase
    return phase is not None and phase.terminal and not decision.actions and phase != Phase.FAILED


def followups_due(status: Status) -> bool:
    """Publishing, backport and post-mortem run from Finalizing on: nothing after the bake rolls back."""
    return status.phase in (Phase.FINALIZING, Phase.SUCCEEDED)


__all__ = ["SLA", "Decision", "followups_due", "holds_production", "incident_id", "is_finished",
           "needs_image_check", "needs_provenance_check", "reconcile"]
