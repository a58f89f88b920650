"""What a release needs before it may deploy, under its namespace's HotfixPolicy: approvals per risk
level (some from named groups), a wait timer after the last one, an expiry, and the SLA. Pure.

Identity is never read from the object alone: admission (crds/admission.yaml) proved who wrote each
approval and with which groups, and the shell re-checks each author's right to approve with a
SubjectAccessReview when it is counted (ApprovalCheck.rights). While the admission policy is missing
or altered, nothing is counted at all.
"""

from __future__ import annotations

import datetime
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal

from hotfix_operator.core.model import Approval, ObservedApproval, Spec, Undo

OnSlaBreach = Literal["Continue", "StopBeforeSwitch"]


@dataclass(frozen=True)
class GovernanceRules:
    """The HotfixPolicy's approval and SLA rules (defaults: the seeds' process)."""

    required: Mapping[str, int] = field(default_factory=lambda: {"low": 1, "medium": 1, "high": 2})
    required_groups: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    wait_seconds: Mapping[str, int] = field(default_factory=lambda: {"low": 0, "medium": 0, "high": 300})
    expiry_seconds: int = 24 * 3600
    sla_seconds: int = 30 * 60
    on_sla_breach: OnSlaBreach = "Continue"
    # spec.undo: how long after Succeeded a hotfix may be undone, and the approvals an undo needs
    undo_window_seconds: int = 24 * 3600
    undo_approvals_required: int = 0
    # spec.drill: does a drill wait for approvals like a hotfix (Required) or skip AwaitingApproval (NotRequired)?
    drill_approvals: Literal["Required", "NotRequired"] = "NotRequired"

    def approvals_needed(self, risk: str) -> int:
        return self.required.get(risk, 1)

    def groups_needed(self, risk: str) -> tuple[str, ...]:
        return self.required_groups.get(risk, ())

    def wait_for(self, risk: str) -> datetime.timedelta:
        return datetime.timedelta(seconds=self.wait_seconds.get(risk, 0))


@dataclass(frozen=True)
class AdmissionCheck:
    """Is the shipped admission policy installed, unaltered, with its binding? If not, how to fix it."""

    ok: bool
    message: str = ""
    # which objects (uid/generation of the policy and the binding; "missing" when absent): a release
    # filed under one fingerprint trusts no approval once it changes
    fingerprint: str = ""


@dataclass(frozen=True)
class ApprovalCheck:
    admission: AdmissionCheck
    # approver -> still holds `approve` in the release's namespace (SubjectAccessReview, with the groups
    # admission proved); approvers missing here were not checked and do not count
    rights: Mapping[str, bool] = field(default_factory=dict)


@dataclass(frozen=True)
class Verdict:
    """Where the approvals stand under the rules."""

    counted: tuple[Approval, ...]
    ignored: tuple[str, ...]
    rejection: Approval | None
    missing_count: int
    missing_groups: tuple[str, ...]

    @property
    def satisfied(self) -> bool:
        return self.rejection is None and self.missing_count == 0 and not self.missing_groups

    @property
    def approvers(self) -> tuple[str, ...]:
        return tuple(a.approver for a in self.counted)


def _tally(approvals: tuple[Approval, ...], requester: str, what: str,
           rights: Mapping[str, bool]) -> tuple[list[Approval], list[str], Approval | None]:
    """The approvals that count (not the requester's, only authors who still hold `approve`), what was
    ignored and why, and the first counted Reject (which ends the count)."""
    counted: list[Approval] = []
    ignored: list[str] = []
    for approval in approvals:
        if approval.approver == requester:
            ignored.append(f"{approval.approver} requested this {what} and cannot approve it")
            continue
        if rights.get(approval.approver) is not True:
            ignored.append(f"{approval.approver} no longer holds the approve verb here (SubjectAccessReview)")
            continue
        if approval.decision == "Reject":
            return counted, ignored, approval
        counted.append(approval)
    return counted, ignored, None


def judge(spec: Spec, rules: GovernanceRules, rights: Mapping[str, bool]) -> Verdict:
    """The approval rule plus the policy: the requester's own approval never counts, only authors who
    still hold `approve` count, the first counted Reject ends it; enough approvals for the risk level;
    one from each required group."""
    counted, ignored, rejection = _tally(spec.approval.approvals, spec.requested_by, "hotfix", rights)
    if rejection is not None:
        return Verdict(tuple(counted), tuple(ignored), rejection, 0, ())
    missing_groups = tuple(g for g in rules.groups_needed(spec.risk_level)
                           if not any(a.in_group(g) for a in counted))
    missing = max(0, rules.approvals_needed(spec.risk_level) - len(counted))
    return Verdict(tuple(counted), tuple(ignored), None, missing, missing_groups)


def judge_undo(undo: Undo, required: int, rights: Mapping[str, bool]) -> Verdict:
    """An undo's approvals (spec.undo.approvals) under the same rule: the one who asked for the undo
    (undo.by) never counts, only authors who still hold `approve`, the first counted Reject refuses it;
    `required` of them (the HotfixPolicy's undo.approvalsRequired, fixed when the release was filed)."""
    counted, ignored, rejection = _tally(undo.approvals, undo.by, "undo", rights)
    missing = 0 if rejection is not None else max(0, required - len(counted))
    return Verdict(tuple(counted), tuple(ignored), rejection, missing, ())


def waiting_line(verdict: Verdict, spec: Spec) -> str:
    """Who or what is still needed, in a few words."""
    parts = []
    if verdict.missing_count:
        parts.append(f"{verdict.missing_count} more approval(s) from someone other than {spec.requested_by}")
    parts += [f"an approval from group {g}" for g in verdict.missing_groups]
    return "; ".join(parts)


def observe_approvals(seen: tuple[ObservedApproval, ...], spec: Spec, now: datetime.datetime,
                      rights: Mapping[str, bool]) -> tuple[ObservedApproval, ...]:
    """Keep the time each approval was first seen; refresh whether its author may still approve."""
    return observe(seen, spec.approval.approvals, now, rights)


def observe(seen: tuple[ObservedApproval, ...], approvals: tuple[Approval, ...], now: datetime.datetime,
            rights: Mapping[str, bool]) -> tuple[ObservedApproval, ...]:
    """observe_approvals for any list of approvals (the hotfix's, or its undo's)."""
    by_name = {o.approver: o for o in seen}
    result = []
    for approval in approvals:
        first = by_name.get(approval.approver)
        observed = first.observed_at if first is not None else now
        result.append(ObservedApproval(approver=approval.approver, decision=approval.decision, observed_at=observed,
                                       group=approval.group, allowed=rights.get(approval.approver)))
    return tuple(result)


def timer_end(verdict: Verdict, seen: tuple[ObservedApproval, ...], rules: GovernanceRules,
              spec: Spec) -> datetime.datetime | None:
    """The wait timer runs from the last counted approval the operator observed."""
    wait = rules.wait_for(spec.risk_level)
    if not wait:
        return None
    times = [o.observed_at for o in seen if o.approver in verdict.approvers]
    return max(times) + wait if times else None
