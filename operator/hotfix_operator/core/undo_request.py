"""spec.undo on a Succeeded HotfixRelease, judged once. Pure; the reverse run itself is core.undo.

Refused, with the phase left Succeeded and nothing changed: outside the window (`spec.undo.windowSeconds` of
the HotfixPolicy, fixed in status when the release was filed), no record of what ran before, or a Deployment
or Service that no longer is as this hotfix left it (a later release or a person changed it). Each says what
to do instead: file a new HotfixRelease for the image wanted. When the policy wants an undo approved
(`undo.approvalsRequired`), it first waits for that many approvals (core.undo_approval), judged again when
they are in. Accepted, the release enters Undoing with fresh copies of its checks in status.undo.checks.
"""

from __future__ import annotations

import datetime

from hotfix_operator.api import CheckStage, ConditionType, Phase, Reason
from hotfix_operator.core import undo_approval
from hotfix_operator.core.check_model import CheckState
from hotfix_operator.core.checks import of_stage
from hotfix_operator.core.model import BlueGreen, Release, Status, UndoStatus, UndoTimes
from hotfix_operator.core.step import ACTIVE_REQUEUE, Step

DEFAULT_WINDOW_SECONDS = 24 * 3600
# the stages the undo's checks run as, against the previous version: the pre-promotion checks before traffic
# moves (through the preview Service), the post-promotion ones during the bake (traffic on it, the hotfix warm)
STAGE = CheckStage.PRE_PROMOTION
BAKE_STAGE = CheckStage.POST_PROMOTION


def undo_name(release: Release) -> str:
    return f"{release.spec.target.deployment[:40]}-undo-{release.uid.replace('-', '')[:8]}"


def short(image: str | None) -> str:
    if not image:
        return "?"
    name, _, digest = image.partition("@")
    return f"{name.rsplit('/', 1)[-1]}@{digest[:19]}…" if digest else image


def window_ends(status: Status) -> datetime.datetime | None:
    completed = status.timestamps.completed
    if completed is None:
        return None
    seconds = status.undo_window_seconds if status.undo_window_seconds is not None else DEFAULT_WINDOW_SECONDS
    return completed + datetime.timedelta(seconds=seconds)


def succeeded(s: Step) -> None:
    """While the window is open, keep looking for spec.undo; once it is set, accept or refuse it once (after
    the approvals the HotfixPolicy asks for, if any: core.undo_approval)."""
    undo, ends = s.spec.undo, window_ends(s.status)
    if s.status.undo is not None:
        if undo_approval.awaits_approval(s.status):
            approving(s, ends)
        return
    if undo is None:
        if ends is not None and s.now < ends:
            s.requeue((ends - s.now).total_seconds())  # an undo may still come: stay in view until then
        elif ends is not None and not s.status.undo_window_closed:
            s.update(undo_window_closed=True)  # from now on the API server refuses spec.undo itself
            # One more look before the release is finished: this decision may rest on a copy of the release
            # older than an undo the API server accepted before this write (the write's answer carries it).
            s.requeue(ACTIVE_REQUEUE)
        return
    refused = refusal(s, ends)
    if refused is not None:
        refuse(s, *refused)
        return
    first = UndoStatus(by=undo.by, reason=undo.reason, decision="Accepted", window_ends=ends,
                       times=UndoTimes(requested=s.now))
    if (s.status.undo_approvals_required or 0) > 0:
        undo_approval.request(s, first)
        return
    accept(s, first)


def approving(s: Step, ends: datetime.datetime | None) -> None:
    """An undo waiting for its approvals: refused as soon as it could no longer run, accepted once approved."""
    refused = refusal(s, ends)
    if refused is not None:
        refuse(s, *refused)
        return
    outcome = undo_approval.judge(s)
    if isinstance(outcome, undo_approval.Refused):
        refuse(s, outcome.reason, f"undo by {s.status.undo.by if s.status.undo else '?'} refused: {outcome.message}; "
               f"{instead(s)}", outcome.actor)
    elif isinstance(outcome, undo_approval.Approved):
        assert s.status.undo is not None
        times = s.status.undo.times.model_copy(update={"approved": s.now})
        accept(s, s.status.undo.model_copy(update={"decision": "Accepted", "times": times}),
               ", ".join(outcome.approvers))
    elif ends is not None:
        s.requeue(max((ends - s.now).total_seconds(), 0.0))  # refused when the window closes unapproved


def refuse(s: Step, reason: str, message: str, actor: str | None = None) -> None:
    undo = s.spec.undo
    assert undo is not None
    base = s.status.undo or UndoStatus(by=undo.by, reason=undo.reason, decision="Refused",
                                       window_ends=window_ends(s.status))
    s.update(undo=base.model_copy(update={"decision": "Refused", "message": message}), waiting_for=None)
    if base.decision == "AwaitingApproval":
        s.set_condition(ConditionType.UNDO_APPROVED, "False", reason, message)
    s.set_condition(ConditionType.UNDONE, "False", reason, message)
    s.post_event("Warning", Reason.UNDO_REFUSED, message, actor or undo.by)
    s.add_audit(Reason.UNDO_REFUSED, message, actor or undo.by)
    s.say(f"hotfix {s.spec.tag} is still live; {message}")


def accept(s: Step, first: UndoStatus, approvers: str | None = None) -> None:
    """Start the reverse run: the previous version comes up beside the hotfix, traffic stays on the hotfix."""
    undo, blue, bg = s.spec.undo, s.obs.blue, s.bg
    assert undo is not None and blue is not None and blue.current_hash is not None
    name = undo_name(s.release)
    checks = tuple(fresh(c) for c in of_stage(s.status.checks, STAGE))
    bake_checks = tuple(fresh(c) for c in of_stage(s.status.checks, BAKE_STAGE))
    s.update(undo=first.model_copy(update=dict(
        previous_image=bg.blue_image, previous_hash=bg.blue_hash, previous_revision=bg.blue_revision,
        hotfix_image=s.spec.artifact.image, abort_seen=s.spec.abort is not None, checks=checks + bake_checks,
        blue_green=BlueGreen(blue_hash=blue.current_hash, blue_image=s.spec.artifact.image,
                             blue_revision=blue.revision, original_selector=bg.original_selector,
                             preview_original_selector=bg.preview_original_selector, green_deployment=name,
                             active_hash=blue.current_hash, serving_hash=blue.current_hash, serving_since=s.now))))
    approved = f", approved by {approvers}" if approvers else ""
    message = (f"undo requested by {undo.by} ({undo.reason}){approved}: bringing back {short(bg.blue_image)} as "
               f"Deployment {name} beside the hotfix; traffic stays on the hotfix until "
               + (f"its {len(checks)} checks pass" if checks else "it is available"))
    s.set_condition(ConditionType.UNDONE, "False", Reason.UNDO_REQUESTED, message)
    s.enter(Phase.UNDOING, message, reason=Reason.UNDO_APPROVED if approvers else Reason.UNDO_REQUESTED,
            actor=approvers or undo.by)


def instead(s: Step) -> str:
    return (f"file a new HotfixRelease for the image wanted ({s.bg.blue_image or 'the previous one'}), which "
            "goes through provenance and approval")


def refusal(s: Step, ends: datetime.datetime | None) -> tuple[str, str] | None:
    """Why this undo is refused (reason, message saying what to do instead), or None to accept it."""
    undo, t, bg, blue, service = s.spec.undo, s.spec.target, s.bg, s.obs.blue, s.obs.service
    assert undo is not None
    who, instead_ = f"undo by {undo.by} refused", instead(s)
    late = f"{who}: the hotfix has no completion time; {instead_}"
    if ends is None or s.now > ends:
        allowed = s.status.undo_window_seconds or DEFAULT_WINDOW_SECONDS
        return Reason.UNDO_WINDOW_CLOSED, (
            f"{who}: the HotfixPolicy allows an undo for {allowed}s after the hotfix succeeded, until "
            f"{ends:%Y-%m-%d %H:%M:%S}Z; {instead_}" if ends else late)
    if bg.blue_image is None or bg.blue_hash is None or bg.original_selector is None:
        return Reason.UNDO_REFUSED, f"{who}: this release has no record of what ran before it; {instead_}"
    if blue is None or service is None:
        return Reason.TARGET_DISAPPEARED, f"{who}: Deployment {t.deployment} or Service {t.service} is gone"
    runs = blue.container_image(t.container)
    if runs != s.spec.artifact.image:
        return Reason.UNDO_TARGET_CHANGED, (
            f"{who}: Deployment {t.deployment} now runs {runs}, not this hotfix (a later release or a person changed "
            f"it), and an undo would throw that change away; {instead_}")
    if dict(service.selector) != bg.original_selector:
        return Reason.UNDO_TARGET_CHANGED, (
            f"{who}: Service {t.service}'s selector is {dict(service.selector)}, not {bg.original_selector} as the "
            f"hotfix left it; {instead_}")
    if not (blue.rolled_out and blue.current_hash):
        return Reason.TARGET_NOT_STABLE, (
            f"{who}: Deployment {t.deployment} is rolling out ({blue.updated_replicas}/{blue.replicas} updated); "
            f"{instead_}")
    return None


def fresh(state: CheckState) -> CheckState:
    """A check as planned at Verifying (spec, target, headers), with no progress."""
    return CheckState(name=state.name, stage=state.stage, source=state.source, spec=state.spec, target=state.target,
                      explicit=state.explicit, address=state.address, headers=state.headers)
