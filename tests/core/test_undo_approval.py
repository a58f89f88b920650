"""An undo the HotfixPolicy wants approved (core.undo_approval), on the toy cluster: it waits with the hotfix
serving and says who may approve and how; only approvers other than undo.by who still hold `approve` count;
a Reject, a closed window or a replaced admission policy refuses it; with its approvals it runs to Undone."""

from __future__ import annotations

import datetime

from hotfix_operator.api import ConditionType, Phase, Reason
from hotfix_operator.core.governance import AdmissionCheck, GovernanceRules, judge_undo
from hotfix_operator.core.lifecycle import is_finished, needs_approval_check, reconcile
from hotfix_operator.core.model import Approval, Release, Status, Undo
from tests.core.test_undo import image, succeeded
from tests.core.world import APP, BLUE_IMAGE, World, drive
from tests.support.releases import HOTFIX_IMAGE

RULES = GovernanceRules(undo_approvals_required=1, undo_window_seconds=3600)


def with_undo(release: Release, *approvals: tuple[str, str], by: str = "alice") -> Release:
    entries = tuple(Approval(approver=a, decision=d, groups=("hotfix:approvers",)) for a, d in approvals)  # type: ignore[arg-type]
    undo = Undo(by=by, reason="p99 latency doubled since the hotfix", approvals=entries)
    return release.model_copy(update={"spec": release.spec.model_copy(update={"undo": undo})})


def settle(world: World, status: Status, rounds: int = 4) -> Status:
    """A few reconciles in which nothing in the cluster may change."""
    before_image, before_selector = image(world), dict(world.selector)
    for _ in range(rounds):
        decision = reconcile(world.release, status, world.observe(status))
        assert decision.actions == (), decision.actions
        assert not is_finished(decision) or decision.status.undo is None or decision.status.undo.decision != \
            "AwaitingApproval"
        status = decision.status
        world.tick()
    assert image(world) == before_image == HOTFIX_IMAGE and world.selector == before_selector
    assert status.phase == Phase.SUCCEEDED
    return status


def condition(status: Status, type_: ConditionType) -> tuple[str, str, str]:
    cond = status.condition(type_)
    assert cond is not None, type_
    return cond.status, cond.reason, cond.message


def waiting(rules: GovernanceRules = RULES) -> tuple[World, Status]:
    world, status = succeeded(rules=rules)
    assert status.undo_approvals_required == 1
    world.release = with_undo(world.release)
    status = settle(world, status)
    assert status.undo is not None and status.undo.decision == "AwaitingApproval"
    return world, status


class TestWaiting:
    def test_an_undo_that_needs_an_approval_waits_with_the_hotfix_serving_and_says_how_to_approve(self) -> None:
        _, status = waiting()
        state, reason, message = condition(status, ConditionType.UNDO_APPROVED)
        assert (state, reason) == ("False", Reason.UNDO_NEEDS_APPROVAL)
        assert "1 more approval(s) from someone other than alice" in message
        assert "kubectl hotfix approve checkout-hotfix -n shop --undo" in message
        assert "/spec/undo/approvals/-" in message  # the raw patch, for those without the plugin
        assert status.waiting_for == "1 approval(s) of the undo from someone other than alice"
        assert needs_approval_check(status), "the shell must check rights while the undo waits"
        assert [e.action for e in status.audit].count(Reason.UNDO_REQUESTED) == 1
        assert status.undo is not None and status.undo.times.requested is not None

    def test_the_requesters_own_approval_never_counts(self) -> None:
        world, status = waiting()
        world.release = with_undo(world.release, ("alice", "Approve"))
        status = settle(world, status)
        assert "alice requested this undo and cannot approve it" in condition(status, ConditionType.UNDO_APPROVED)[2]

    def test_an_approver_who_lost_the_approve_verb_does_not_count(self) -> None:
        world, status = waiting()
        world.revoked = frozenset({"bob"})
        world.release = with_undo(world.release, ("bob", "Approve"))
        status = settle(world, status)
        assert "bob no longer holds the approve verb" in condition(status, ConditionType.UNDO_APPROVED)[2]
        assert status.undo is not None and status.undo.approved_by == ()

    def test_nothing_counts_while_the_admission_policy_is_missing(self) -> None:
        world, status = waiting()
        world.admission = AdmissionCheck(ok=False, message="ValidatingAdmissionPolicy hotfix-operator-approvals is "
                                                           "missing", fingerprint="policy missing; binding missing")
        world.release = with_undo(world.release, ("bob", "Approve"))
        status = settle(world, status)
        state, reason, message = condition(status, ConditionType.UNDO_APPROVED)
        assert (state, reason) == ("False", Reason.ADMISSION_POLICY_MISSING) and "crds/admission.yaml" in message


class TestRefused:
    def refused(self, world: World, status: Status, reason: str) -> Status:
        status = settle(world, status)
        assert status.undo is not None and status.undo.decision == "Refused"
        assert condition(status, ConditionType.UNDONE)[1] == reason
        assert condition(status, ConditionType.UNDO_APPROVED)[1] == reason
        assert "file a new HotfixRelease" in condition(status, ConditionType.UNDONE)[2]
        assert status.waiting_for is None
        assert [e.action for e in status.audit].count(Reason.UNDO_REFUSED) == 1
        assert is_finished(reconcile(world.release, status, world.observe(status)))
        return status

    def test_a_reject_refuses_the_undo(self) -> None:
        world, status = waiting()
        world.release = with_undo(world.release, ("bob", "Reject"))
        status = self.refused(world, status, Reason.UNDO_REJECTED)
        assert "rejected by bob" in status.message

    def test_the_window_closing_before_the_approvals_refuses_the_undo(self) -> None:
        world, status = waiting()
        world.now += datetime.timedelta(seconds=3601)
        self.refused(world, status, Reason.UNDO_WINDOW_CLOSED)

    def test_an_admission_policy_replaced_since_filing_refuses_the_undo(self) -> None:
        world, status = waiting()
        world.admission = AdmissionCheck(ok=True, fingerprint="policy other/2; binding other/1")
        world.release = with_undo(world.release, ("bob", "Approve"))
        self.refused(world, status, Reason.ADMISSION_POLICY_CHANGED)


def test_with_its_approval_the_undo_runs_to_undone_in_the_approvers_name() -> None:
    world, status = waiting()
    world.release = with_undo(world.release, ("alice", "Approve"), ("bob", "Approve"))
    status, _ = drive(world, status, never_dark=True)
    assert status.phase == Phase.UNDONE, status.message
    assert image(world) == BLUE_IMAGE and world.selector == APP
    assert status.undo is not None and status.undo.approved_by == ("bob",)
    assert status.undo.times.approved is not None and status.waiting_for is None
    assert condition(status, ConditionType.UNDO_APPROVED)[:2] == ("True", Reason.UNDO_APPROVED)
    undoing = next(e for e in status.audit if e.action == Phase.UNDOING.value)
    assert undoing.actor == "bob" and "approved by bob" in undoing.detail
    assert any(e.action == Reason.UNDO_APPROVED for e in status.audit)
    assert [o.approver for o in status.undo.observed_approvals] == ["alice", "bob"]


def test_without_a_policy_asking_for_approvals_the_undo_starts_at_once() -> None:
    world, status = succeeded(rules=GovernanceRules(undo_approvals_required=0))
    world.release = with_undo(world.release)
    status = reconcile(world.release, status, world.observe(status)).status
    assert status.phase == Phase.UNDOING and status.condition(ConditionType.UNDO_APPROVED) is None


def test_judge_undo_counts_only_others_with_the_right_and_stops_at_a_reject() -> None:
    undo = with_undo(succeeded()[0].release, ("alice", "Approve"), ("carol", "Approve"), ("bob", "Approve"),
                     ("dave", "Reject")).spec.undo
    assert undo is not None
    verdict = judge_undo(undo, 2, {"carol": False, "bob": True, "dave": True})
    assert verdict.approvers == ("bob",) and verdict.rejection is not None and verdict.rejection.approver == "dave"
    assert not verdict.satisfied
    enough = judge_undo(undo.model_copy(update={"approvals": undo.approvals[:3]}), 1, {"bob": True})
    assert enough.satisfied and enough.approvers == ("bob",)
