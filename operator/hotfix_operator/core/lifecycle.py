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

from hotfix_operator.api import CheckStage, ConditionType, Phase, Reason
from hotfix_operator.core import checks, cutover, drill, drill_ending, intake, undo, undo_approval
from hotfix_operator.core.actions import Event
from hotfix_operator.core.check_model import CheckState
from hotfix_operator.core.conditions import ConditionStatus
from hotfix_operator.core.governance import GovernanceRules
from hotfix_operator.core.model import Release, Status
from hotfix_operator.core.observations import Observations
from hotfix_operator.core.step import Decision, Step
from hotfix_operator.core.traffic import account_for_unrecorded, preview_lists_only

PHASES: dict[Phase, Callable[[Step], None]] = {
    Phase.PENDING: intake.pending,
    Phase.VERIFYING: intake.verifying,
    Phase.QUEUED: intake.queued,
    Phase.AWAITING_APPROVAL: intake.awaiting_approval,
    Phase.DEPLOYING: cutover.deploying,
    Phase.PRE_PROMOTION: cutover.pre_promotion,
    Phase.PROMOTED: cutover.promoted,
    Phase.FINALIZING: cutover.finalizing,
    Phase.ROLLING_BACK: cutover.rolling_back,
    # spec.undo after success (core.undo)
    Phase.UNDOING: undo.undoing,
    # spec.drill: the verdict is in, green goes (core.drill_ending)
    Phase.DRILL_ENDING: drill_ending.ending,
}
BEFORE_PRODUCTION = (Phase.PENDING, Phase.VERIFYING, Phase.QUEUED, Phase.AWAITING_APPROVAL)
# the phases in which the release's own blue-green record (status.blueGreen) says where the active Service is
HOLDS_THE_SERVICE = (Phase.DEPLOYING, Phase.PRE_PROMOTION, Phase.PROMOTED, Phase.FINALIZING, Phase.ROLLING_BACK,
                     Phase.DRILL_ENDING)


# A phase that hands over to a cutover phase lets that one act on the same observations at once, not
# a reconcile later (approval -> pin blue and create green; bake over -> fold). Safe because every
# cutover phase re-asserts its state from what it observes and removes nothing before that confirms
# it, just as when an earlier action has not landed yet; and what they observe is gathered on every
# reconcile. A gate's answer is not: a phase before production is entered at once only when the shell
# has asked its gate too (it does, for GATED_PHASES, and decides again), so one status write records
# Pending -> Verifying -> AwaitingApproval. Bounded.
CHAINED_PHASES = 4
GATED_PHASES = (Phase.VERIFYING, Phase.AWAITING_APPROVAL)


def observed_for(phase: Phase, obs: Observations) -> bool:
    """Whether `obs` holds what `phase` decides on, so it may run in the reconcile that entered it."""
    if phase == Phase.VERIFYING:
        return obs.provenance is not None and obs.check_plan is not None and obs.queue_ahead is not None
    if phase == Phase.AWAITING_APPROVAL:
        return obs.approvals is not None and obs.rules is not None
    return phase.holds_target


def run_phases(s: Step) -> None:
    for _ in range(CHAINED_PHASES):
        phase = s.status.phase
        handler = PHASES.get(phase) if phase is not None else None
        if handler is None:
            return
        handler(s)
        if s.status.phase == phase or s.status.phase is None or not observed_for(s.status.phase, s.obs):
            return


def reconcile(release: Release, status: Status, obs: Observations) -> Decision:
    s = Step(release, status, obs.now, obs=obs)
    s.update(observed_generation=release.generation)
    if s.status.phase is None:
        initialise(s)
    else:
        cutover.account_for_unrecorded_fold(s)  # before anything that may roll back
        if release.spec.abort is not None and handle_abort(s, s.status.phase):
            pass
        elif not enforce_deadlines(s, s.status.phase):
            run_phases(s)
    if status.phase in HOLDS_THE_SERVICE:
        account_for_unrecorded(s, status.blue_green)
    if s.status.phase == Phase.SUCCEEDED:
        undo.succeeded(s)  # spec.undo, or staying in view while one may still come (from the reconcile it succeeds)
    summarise(s)
    return s.decision()


def initialise(s: Step) -> None:
    created, rules = s.release.created, s.obs.rules or GovernanceRules()
    s.update(incident_id=incident_id(created), tag=s.spec.tag,
             sla_deadline=created + datetime.timedelta(seconds=rules.sla_seconds), sla_on_breach=rules.on_sla_breach,
             expires_at=created + datetime.timedelta(seconds=rules.expiry_seconds),
             approvals_required=rules.approvals_needed(s.spec.risk_level),
             undo_window_seconds=rules.undo_window_seconds, undo_approvals_required=rules.undo_approvals_required,
             requested_through=s.release.requested_through)
    if s.spec.drill:  # no SLA clock (its stages are reported against the budget instead), no tag, no undo
        start = drill.start(rules)
        needed = 0 if start.approvals == "NotRequired" else rules.approvals_needed(s.spec.risk_level)
        s.update(drill=start, sla_deadline=None, sla_on_breach=None, tag=None, undo_window_seconds=None,
                 undo_approvals_required=None, approvals_required=needed)
    if s.obs.approvals is not None:  # the admission policy this release is filed under
        s.update(admission_fingerprint=s.obs.approvals.admission.fingerprint)
    s.stamp(created=created)
    through = f" (filed through {s.release.requested_through})" if s.release.requested_through else ""
    what = "drill" if s.spec.drill else "hotfix"
    s.enter(Phase.PENDING, f"checking the target and the image for {what} {s.spec.tag}{through}",
            reason=Reason.ACCEPTED, actor=s.spec.requested_by)


def handle_abort(s: Step, phase: Phase) -> bool:
    """True when abort decided this reconcile. Before production it rejects; while the release holds
    production (Finalizing included) it rolls back; once Succeeded it is recorded once and ignored."""
    abort = s.spec.abort
    assert abort is not None
    why = f"aborted by {abort.by}: {abort.reason}"
    if phase in BEFORE_PRODUCTION:
        s.reject(Reason.ABORTED, f"{why}; nothing in production changed", actor=abort.by)
        return True
    if phase in (Phase.DEPLOYING, Phase.PRE_PROMOTION, Phase.PROMOTED, Phase.FINALIZING):
        s.roll_back(Reason.ABORTED, f"{why}; moving traffic back to blue", actor=abort.by)
        return True
    if phase == Phase.FAILED and s.bg.original_selector is not None and \
            s.status.condition(ConditionType.ROLLED_BACK) is None:
        s.roll_back(Reason.ABORTED, f"{why} after a failure; restoring blue", actor=abort.by)
        return True
    if phase == Phase.SUCCEEDED and not any(e.action == Reason.ABORT_IGNORED for e in s.status.audit):
        s.add_audit(Reason.ABORT_IGNORED, f"{why}; the hotfix had already succeeded, so nothing was undone — ship "
                    "a new HotfixRelease to change it again", actor=abort.by)
        s.events.append(Event("Warning", Reason.ABORT_IGNORED, "abort arrived after the hotfix succeeded", abort.by))
    return False


def enforce_deadlines(s: Step, phase: Phase) -> bool:
    """Expiry before deployment, and the SLA until traffic is on the hotfix; True when one ended this
    reconcile's work (the release expired, or the policy stops an SLA breach before the switch)."""
    if phase in BEFORE_PRODUCTION and s.status.expires_at is not None and s.now >= s.status.expires_at:
        s.update(waiting_for=None)
        if s.spec.drill:
            s.reject(Reason.EXPIRED, f"not deployed by {s.status.expires_at:%Y-%m-%d %H:%M:%S}Z, the HotfixPolicy's "
                     "approval expiry")
            return True
        s.enter(Phase.EXPIRED, f"not deployed by {s.status.expires_at:%Y-%m-%d %H:%M:%S}Z, the HotfixPolicy's "
                "approval expiry; file a new HotfixRelease if the fix is still needed", reason=Reason.EXPIRED,
                warning=True)
        return True
    deadline = s.status.sla_deadline
    before_switch = s.status.timestamps.promoted is None and not phase.terminal and phase != Phase.ROLLING_BACK
    if deadline is None or not before_switch or s.now < deadline:
        return False
    message = (f"the SLA of traffic on the hotfix by {deadline:%H:%M:%S}Z was missed (created "
               f"{s.release.created:%H:%M:%S}Z, now {phase.value})")
    if s.status.condition(ConditionType.SLA_BREACHED) is None:
        s.set_condition(ConditionType.SLA_BREACHED, "True", Reason.SLA_BREACHED, message)
        s.post_event("Warning", Reason.SLA_BREACHED, message)
        s.add_audit(Reason.SLA_BREACHED, message)
    if s.status.sla_on_breach != "StopBeforeSwitch":
        return False
    stop = f"{message}; the HotfixPolicy stops a late hotfix before the switch"
    if phase in BEFORE_PRODUCTION:
        s.reject(Reason.SLA_BREACHED, stop)
    else:
        s.roll_back(Reason.SLA_BREACHED, stop)
    return True


def summarise(s: Step) -> None:
    """The kstatus conditions every tool reads: Ready, Reconciling, Stalled."""
    phase = s.status.phase
    if phase is None:
        return
    message = s.status.message
    ready: ConditionStatus = "True" if phase in (Phase.SUCCEEDED, Phase.UNDONE, Phase.DRILL_PASSED) else "False"
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


def needs_approval_check(status: Status) -> bool:
    """When filed (to note the admission policy it was filed under), while awaiting approval, and while an
    undo waits for the approvals the HotfixPolicy asks for (core.undo_approval)."""
    return status.phase is None or status.phase == Phase.AWAITING_APPROVAL or undo_approval.awaits_approval(status)


def needs_rules(status: Status) -> bool:
    """The policy's rules are read when a release is filed (its expiry and SLA are fixed in status then)
    and while it awaits approval; not on the cutover's one-second polls."""
    return status.phase is None or status.phase == Phase.AWAITING_APPROVAL


def needs_check_plan(status: Status) -> bool:
    """The checks (and where each may connect) are planned at Verifying, before anyone approves."""
    return status.phase == Phase.VERIFYING


def checks_due(status: Status, now: datetime.datetime) -> tuple[CheckState, ...]:
    """The checks the shell should measure now: the pre-promotion ones while green is behind the preview
    Service, the post-promotion ones once traffic is seen on green."""
    stamps = status.timestamps
    if status.phase == Phase.PRE_PROMOTION and stamps.green_available is not None:
        return checks.due(status.checks, CheckStage.PRE_PROMOTION, stamps.green_available, now)
    if status.phase == Phase.PROMOTED and stamps.promoted is not None:
        return checks.due(status.checks, CheckStage.POST_PROMOTION, stamps.promoted, now)
    return undo.checks_due(status, now)


def preview_side(status: Status) -> str | None:
    """The pod-template-hash the preview Service must list alone before the checks due now are measured
    through it: green's in PrePromotion, the previous version's while an undo checks it; else None."""
    if status.phase == Phase.PRE_PROMOTION:
        return status.blue_green.green_hash
    return undo.preview_side(status)


def checks_to_measure(status: Status, obs: Observations) -> tuple[CheckState, ...]:
    """The checks due now (checks_due) that can reach what they judge: none of those sent through the
    preview Service while its EndpointSlices still list other pods (a check measured then could be answered
    by blue, and pass for green)."""
    due = checks_due(status, obs.now)
    side = preview_side(status)
    if due and side is not None and not preview_lists_only(obs, side):
        return ()
    return due


# The key under which a release registers for the changes of every pod in its namespace
ANY_POD = ("Pod", "*")


def watched_objects(release: Release, status: Status, *, pods: bool = True) -> tuple[tuple[str, str], ...]:
    """The objects whose changes should wake this release at once (kind, name), while it holds the
    target: its Deployment, green, and the active and preview Services (their EndpointSlices carry their
    names); and, unless `pods` is off (Decision.wakes_on_pods), any pod of its namespace (ANY_POD)."""
    if status.phase is None or not status.phase.holds_target:
        return ()
    t = release.spec.target
    green = undo.observed_green(release, status)
    preview = (("Service", t.preview_service),) if t.preview_service else ()
    every_pod = (ANY_POD,) if pods else ()
    return ("Deployment", t.deployment), ("Deployment", green), ("Service", t.service), *preview, *every_pod


def only_progress(old: Status, new: Status) -> bool:
    """`new` differs from `old` in what it says and in nothing it records: the messages alone changed (a
    replica count in a progress line, say), so the shell may hold the write back for a moment."""
    def quiet(status: Status) -> Status:
        return status.model_copy(update={"message": "", "conditions": tuple(
            c.model_copy(update={"message": ""}) for c in status.conditions)})

    return new != old and quiet(new) == quiet(old)


def holds_production(status: Status) -> bool:
    """The release owns the target's traffic and objects: deleting it must roll back first."""
    return status.phase is not None and status.phase.holds_target


def is_finished(decision: Decision) -> bool:
    """Nothing left for the lifecycle, ever: terminal with no action pending. Failed is not finished:
    a person may still set spec.abort to roll back. Succeeded asks to be requeued while spec.undo may
    still come (core.undo.succeeded), so it is not finished until the undo window closes."""
    phase = decision.status.phase
    if phase == Phase.SUCCEEDED and decision.requeue_after is not None:
        return False
    return phase is not None and phase.terminal and not decision.actions and phase != Phase.FAILED


def followups_due(status: Status) -> bool:
    """Publishing, backport and post-mortem run from Finalizing on: nothing after the bake rolls back.
    Never for a drill (it never gets that far, and says so in status.drill)."""
    return status.drill is None and status.phase in (Phase.FINALIZING, Phase.SUCCEEDED, Phase.UNDOING, Phase.UNDONE,
                                                     Phase.UNDO_FAILED)


__all__ = [
    "ANY_POD",
    "Decision",
    "checks_due",
    "checks_to_measure",
    "followups_due",
    "holds_production",
    "incident_id",
    "is_finished",
    "needs_approval_check",
    "needs_check_plan",
    "needs_image_check",
    "needs_provenance_check",
    "needs_rules",
    "reconcile",
]
