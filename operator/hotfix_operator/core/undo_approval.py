"""An undo the HotfixPolicy wants approved (`undo.approvalsRequired` > 0, fixed in status when filed). Pure.

The undo waits with the phase left Succeeded and the hotfix serving; status.undo.decision is
AwaitingApproval, the condition UndoApproved (False, UndoNeedsApproval) and status.waitingFor say how many
approvals are missing, from whom, and the command that gives one. It counts under the forward approval's
identity rules (core.governance): approvers append theirs to `spec.undo.approvals`, where admission
(crds/admission.yaml) proves each author and their groups and refuses the undo's own requester; the shell
re-checks each author's `approve` with a SubjectAccessReview; nothing counts while the admission policy is
not as shipped, and a policy replaced since the release was filed refuses the undo. `undo.by` never counts,
the first counted Reject refuses the undo, and so does the undo window closing before enough approvals.
"""

from __future__ import annotations

from dataclasses import dataclass

from hotfix_operator.api import ConditionType, Reason
from hotfix_operator.core.governance import judge_undo, observe
from hotfix_operator.core.model import Status, UndoStatus
from hotfix_operator.core.step import Step

RECHECK_SECONDS = 10.0  # while waiting: re-check rights and the admission policy this often

# What an approver types without the plugin: their own name and groups come from the API server.
APPROVE_UNDO_COMMAND = (
    'kubectl -n NAMESPACE patch hfr NAME --type=json -p "[{\\"op\\":\\"add\\",'
    '\\"path\\":\\"/spec/undo/approvals/-\\",\\"value\\":{'
    '\\"approver\\":\\"$(kubectl auth whoami -o jsonpath=\'{.status.userInfo.username}\')\\",'
    '\\"decision\\":\\"Approve\\",'
    '\\"groups\\":$(kubectl auth whoami -o jsonpath=\'{.status.userInfo.groups}\')}}]"'
)


@dataclass(frozen=True)
class Refused:
    reason: str
    message: str
    actor: str | None = None


@dataclass(frozen=True)
class Approved:
    approvers: tuple[str, ...]


def awaits_approval(status: Status) -> bool:
    """The shell checks the admission policy and the undo approvers' rights while this is True."""
    return status.undo is not None and status.undo.decision == "AwaitingApproval"


def hint(s: Step, missing: int) -> str:
    undo = s.spec.undo
    assert undo is not None
    command = APPROVE_UNDO_COMMAND.replace("NAMESPACE", s.release.namespace).replace("NAME", s.release.name)
    return (f"the undo requested by {undo.by} waits for {missing} more approval(s) from someone other than "
            f"{undo.by} who holds approve on hotfixreleases in {s.release.namespace}; the hotfix keeps serving; "
            f"to approve: kubectl hotfix approve {s.release.name} -n {s.release.namespace} --undo (without the "
            f"plugin: {command})")


def request(s: Step, status: UndoStatus) -> None:
    """First sight of an undo that needs approvals: record it as waiting, and say who may approve and how."""
    undo = s.spec.undo
    assert undo is not None
    required = s.status.undo_approvals_required or 0
    s.update(undo=status.model_copy(update={"decision": "AwaitingApproval", "approvals_required": required}))
    line = hint(s, required)
    s.set_condition(ConditionType.UNDO_APPROVED, "False", Reason.UNDO_NEEDS_APPROVAL, line)
    s.set_condition(ConditionType.UNDONE, "False", Reason.UNDO_NEEDS_APPROVAL, line)
    s.post_event("Normal", Reason.UNDO_REQUESTED, line, undo.by)
    s.add_audit(Reason.UNDO_REQUESTED, line, undo.by)
    s.update(waiting_for=f"{required} approval(s) of the undo from someone other than {undo.by}")
    s.say(line)
    s.requeue(0)  # the next reconcile asks the shell for the admission policy and the approvers' rights


def judge(s: Step) -> Refused | Approved | None:
    """Where the undo's approvals stand now; None while it waits (said in status, requeued)."""
    undo, current, check = s.spec.undo, s.status.undo, s.obs.approvals
    assert undo is not None and current is not None
    if check is None:
        s.say("cannot read the admission policy or the undo approvers' rights now; retrying")
        s.requeue(RECHECK_SECONDS)
        return None
    if not check.admission.ok:
        line = (f"no undo approval is counted while the admission policy is not as shipped: {check.admission.message}. "
                "Install it: kubectl apply --server-side -f crds/admission.yaml")
        s.set_condition(ConditionType.UNDO_APPROVED, "False", Reason.ADMISSION_POLICY_MISSING, line)
        s.say(line)
        s.requeue(RECHECK_SECONDS)
        return None
    if s.status.admission_fingerprint not in (None, check.admission.fingerprint):
        return Refused(Reason.ADMISSION_POLICY_CHANGED, "the admission policy that proves who approves was replaced, "
                       "removed or edited since this release was filed, so no approval of its undo can be trusted")
    required = current.approvals_required or 0
    verdict = judge_undo(undo, required, check.rights)
    seen = observe(current.observed_approvals, undo.approvals, s.now, check.rights)
    s.update(undo=current.model_copy(update={"observed_approvals": seen, "approved_by": verdict.approvers}))
    if verdict.rejection is not None:
        who, comment = verdict.rejection.approver, verdict.rejection.comment
        return Refused(Reason.UNDO_REJECTED, f"rejected by {who}" + (f": {comment}" if comment else ""), who)
    if verdict.missing_count:
        note = f" (ignored: {'; '.join(verdict.ignored)})" if verdict.ignored else ""
        line = hint(s, verdict.missing_count) + note
        s.set_condition(ConditionType.UNDO_APPROVED, "False", Reason.UNDO_NEEDS_APPROVAL, line)
        s.set_condition(ConditionType.UNDONE, "False", Reason.UNDO_NEEDS_APPROVAL, line)
        s.update(waiting_for=f"{verdict.missing_count} approval(s) of the undo from someone other than {undo.by}")
        s.say(line)
        s.requeue(RECHECK_SECONDS)
        return None
    names = ", ".join(verdict.approvers)
    s.update(waiting_for=None)
    s.set_condition(ConditionType.UNDO_APPROVED, "True", Reason.UNDO_APPROVED, f"undo approved by {names}")
    s.add_audit(Reason.UNDO_APPROVED, f"undo requested by {undo.by} approved by {names}", names)
    return Approved(verdict.approvers)


__all__ = ["Approved", "Refused", "awaits_approval", "hint", "judge", "request"]
