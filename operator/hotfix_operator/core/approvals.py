"""The approval rule, in one place: an Approve counts unless the requester gave it; the first Reject
by anyone else ends the release. Used by the lifecycle (to decide) and by the published record."""

from __future__ import annotations

from dataclasses import dataclass

from hotfix_operator.core.model import Approval, Spec

REQUIRED_APPROVALS = 1


@dataclass(frozen=True)
class ApprovalTally:
    approvals: tuple[Approval, ...]  # the ones that count, in the order given
    ignored: tuple[str, ...]  # why others did not count, for the status message
    rejection: Approval | None  # the first Reject that counts; approvals after it are not read

    @property
    def approvers(self) -> tuple[str, ...]:
        return tuple(a.approver for a in self.approvals)


def tally(spec: Spec) -> ApprovalTally:
    counted: list[Approval] = []
    ignored: list[str] = []
    for approval in spec.approval.approvals:
        if approval.approver == spec.requested_by:
            ignored.append(f"{approval.approver} requested this hotfix and cannot approve it")
            continue
        if approval.decision == "Reject":
            return ApprovalTally(tuple(counted), tuple(ignored), approval)
        counted.append(approval)
    return ApprovalTally(tuple(counted), tuple(ignored), None)
