"""Drills (spec.drill) in the pure lifecycle: the real path up to the pre-promotion checks, then green
is removed with the active Service on blue throughout, and DrillPassed or DrillFailed with the stages
timed against the SLA budget. No traffic, no follow-ups, no undo; notifications say "drill"."""

from __future__ import annotations

import datetime
from typing import Any

from hotfix_operator.api import POD_TEMPLATE_HASH, ConditionType, Phase, Reason
from hotfix_operator.core import drill, notify
from hotfix_operator.core.check_model import Checks
from hotfix_operator.core.checks import plan
from hotfix_operator.core.governance import GovernanceRules
from hotfix_operator.core.lifecycle import Decision, followups_due, is_finished, reconcile
from hotfix_operator.core.model import Abort, Release, Status
from hotfix_operator.core.notice_model import Kind
from hotfix_operator.core.observations import CheckPlan, ProvenanceCheck
from tests.core.test_lifecycle_checks import HEALTH, answers
from tests.core.world import APP, World
from tests.support.releases import release_object, release_spec


def drill_release(pre: tuple[dict[str, Any], ...] = (HEALTH,), **overrides: Any) -> Release:
    return release_object(release_spec(drill=True, checks={"prePromotion": list(pre)}, **overrides))


def world_for(release: Release, **rules: Any) -> World:
    world = World(release, rules=GovernanceRules(**rules))
    world.check_plan = CheckPlan(ok=True, states=plan(Checks(), release.spec.checks))
    return world


def run(world: World, status: Status | None = None, steps: int = 120,
        abort_in: Phase | None = None) -> tuple[Status, list[Decision], list[Phase | None]]:
    """Reconcile and act to the end, checking after every action and tick that the active Service never
    selects anything but blue and that its endpoints are only blue pods."""
    status = status or Status()
    decisions: list[Decision] = []
    phases: list[Phase | None] = []
    blue = world.blue.current_hash
    for _ in range(steps):
        if abort_in is not None and status.phase == abort_in and world.release.spec.abort is None:
            world.release = world.release.model_copy(update={"spec": world.release.spec.model_copy(
                update={"abort": Abort(by="alice", reason="enough rehearsing")})})
        decision = reconcile(world.release, status, world.observe(status))
        decisions.append(decision)
        status = decision.status
        if not phases or phases[-1] != status.phase:
            phases.append(status.phase)
        for action in decision.actions:
            world.apply(action)
            assert world.selector.get(POD_TEMPLATE_HASH) in (None, blue), "the active Service left blue"
        assert world.published and world.published <= world.ready_ips()[blue], "endpoints other than blue's"
        if status.phase is not None and status.phase.terminal and not decision.actions:
            return status, decisions, phases
        world.tick()
    raise AssertionError(f"no end after {steps} steps: {status.phase} {status.message}")


def test_a_passing_drill_checks_green_then_removes_it_and_reports_its_stages() -> None:
    world = world_for(drill_release())
    world.answer = answers({"health": ["pass"]})
    status, decisions, phases = run(world)
    assert status.phase == Phase.DRILL_PASSED
    # the real path, no approval wait (NotRequired by default), stopped before any switch; Verifying passes in
    # the reconcile after Pending, which gathers its gate too
    assert phases[:3] == [Phase.PENDING, Phase.DEPLOYING, Phase.PRE_PROMOTION]
    assert [e.action for e in status.audit][:3] == [Phase.PENDING, Phase.VERIFYING, "ProvenanceVerified"]
    assert Phase.DRILL_ENDING in phases and Phase.PROMOTED not in phases and Phase.AWAITING_APPROVAL not in phases
    assert any(e.action == Reason.DRILL_APPROVAL_SKIPPED and "NotRequired" in e.detail for e in status.audit)
    assert status.timestamps.promoted is None and status.checks[0].phase == "Passed"
    # green gone, both Services exactly as they were
    assert world.green is not None and world.green.deleted
    assert world.selector == APP and world.preview_selector == APP
    assert status.blue_green.original_selector == APP
    # stages against the seeds' 30-minute split
    assert status.drill is not None and status.drill.outcome == "Passed"
    stages = {st.name: st for st in status.drill.stages}
    assert [st.name for st in status.drill.stages] == ["detection", "fix", "review", "gatesAndDeployment",
                                                     "verification"]
    assert {n: st.budget_seconds for n, st in stages.items()} == {
        "detection": 300, "fix": 600, "review": 300, "gatesAndDeployment": 480, "verification": 120}
    assert stages["detection"].seconds is None and "not measured" in stages["detection"].note
    assert stages["review"].seconds == 0
    assert stages["gatesAndDeployment"].seconds is not None and stages["gatesAndDeployment"].within_budget
    assert stages["verification"].seconds is not None and stages["verification"].seconds >= 1
    ready = status.condition(ConditionType.READY)
    assert ready is not None and ready.status == "True"
    # nothing after: no follow-ups, no tag, no SLA clock, finished
    assert not followups_due(status) and status.tag is None and status.sla_deadline is None
    assert is_finished(decisions[-1])
    assert "drill passed" in status.message


def test_budgets_scale_to_the_policy_sla() -> None:
    assert drill.budgets(600) == {"detection": 100, "fix": 200, "review": 100, "gatesAndDeployment": 160,
                                  "verification": 40}
    world = world_for(drill_release(()), sla_seconds=600)
    status, _, phases = run(world)
    assert status.phase == Phase.DRILL_PASSED and Phase.PRE_PROMOTION not in phases
    assert status.drill is not None and status.drill.sla_seconds == 600
    assert {st.name: st.budget_seconds for st in status.drill.stages}["verification"] == 40


def test_a_failing_pre_promotion_check_ends_drill_failed_with_green_removed() -> None:
    world = world_for(drill_release())
    world.answer = answers({"health": ["fail"]})
    status, _, phases = run(world)
    assert status.phase == Phase.DRILL_FAILED and Phase.ROLLING_BACK not in phases
    assert status.drill is not None and status.drill.outcome == "Failed" and status.drill.reason == Reason.CHECK_FAILED
    assert "pre-promotion check health (http) failed" in status.message
    assert world.green is not None and world.green.deleted and world.selector == APP and world.preview_selector == APP
    stalled = status.condition(ConditionType.STALLED)
    assert stalled is not None and stalled.status == "True"


def test_a_green_that_never_comes_up_fails_the_drill_even_without_auto_rollback() -> None:
    world = world_for(drill_release((), rollout={"progressDeadlineSeconds": 10, "autoRollback": False}))
    world.green_ready_after = None
    status, _, _ = run(world)
    assert status.phase == Phase.DRILL_FAILED and status.drill is not None
    assert status.drill.reason == Reason.PROGRESS_DEADLINE_EXCEEDED
    assert world.green is not None and world.green.deleted and world.selector == APP
    stages = {st.name: st for st in status.drill.stages}
    assert stages["verification"].seconds is None and stages["verification"].note == "not reached"


def test_refused_provenance_fails_the_drill_before_anything_changes() -> None:
    world = world_for(drill_release())
    world.provenance = ProvenanceCheck(ok=False, reason="SignatureInvalid", message="no valid signature",
                                       policy="test")
    status, _, _ = run(world)
    assert status.phase == Phase.DRILL_FAILED and world.green is None
    assert status.drill is not None and status.drill.reason == "SignatureInvalid"
    assert "drill failed: no valid signature" in status.message


def test_a_policy_may_require_approvals_on_drills() -> None:
    world = world_for(drill_release(()), drill_approvals="Required")
    status = Status()
    for _ in range(5):
        status = reconcile(world.release, status, world.observe(status)).status
        world.tick()
    assert status.phase == Phase.AWAITING_APPROVAL and status.approvals_required == 1
    assert Kind.APPROVAL_NEEDED in notify.happened(world.release, status, world.now)
    assert "drill of shop/checkout" in notify.text(world.release, status, Kind.APPROVAL_NEEDED)
    world.release = release_object(release_spec(drill=True, approvals=(("bob", "Approve"),)))
    status, _, _ = run(world, status)
    assert status.phase == Phase.DRILL_PASSED and status.approved_by == ("bob",)
    review = {st.name: st for st in status.drill.stages}["review"] if status.drill else None
    assert review is not None and review.seconds is not None and review.seconds >= 1


def test_abort_during_a_drill_removes_green_and_ends_drill_failed() -> None:
    world = world_for(drill_release(({**HEALTH, "count": 100},)))  # the checks do not conclude in time
    world.answer = answers({"health": ["pass"]})
    status, _, phases = run(world, abort_in=Phase.PRE_PROMOTION)
    assert status.phase == Phase.DRILL_FAILED and Phase.DRILL_ENDING in phases
    assert status.drill is not None and status.drill.reason == Reason.ABORTED
    assert "aborted by alice: enough rehearsing" in status.message
    assert world.green is not None and world.green.deleted and world.selector == APP and world.preview_selector == APP


def test_abort_before_production_fails_the_drill_at_once() -> None:
    release = release_object(release_spec(drill=True, abort={"by": "alice", "reason": "wrong image"}))
    world = world_for(release)
    status = reconcile(release, Status(), world.observe()).status
    status = reconcile(release, status, world.observe(status)).status
    assert status.phase == Phase.DRILL_FAILED and world.green is None


def test_notifications_of_a_drill_say_drill_and_never_count_toward_the_sla() -> None:
    world = world_for(drill_release())
    world.answer = answers({"health": ["pass"]})
    status, _, _ = run(world)
    late = world.now + datetime.timedelta(hours=2)
    kinds = notify.happened(world.release, status, late)
    assert kinds == (Kind.DRILL_PASSED,)
    line = notify.text(world.release, status, Kind.DRILL_PASSED)
    assert line.startswith("drill of shop/checkout") and "traffic never moved" in line
    assert notify.payload(world.release, status, Kind.DRILL_PASSED, "webhook")["drill"] is True
