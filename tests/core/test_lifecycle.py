"""The lifecycle core, as a specification: phases, refusals, approvals, rollback, and that a crash
between any two steps never leaves production worse off than doing nothing."""

from __future__ import annotations

import dataclasses
import datetime
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from hotfix_operator.api import AUDIT_LIMIT, POD_TEMPLATE_HASH, ConditionType, Phase
from hotfix_operator.core.actions import DeleteDeployment, SetContainerImage, SetServiceSelector, ahead_of_status
from hotfix_operator.core.lifecycle import ANY_POD, Decision, incident_id, reconcile, watched_objects
from hotfix_operator.core.model import Abort, AuditEntry, Release, Status
from hotfix_operator.core.observations import ImageCheck, ProvenanceCheck
from hotfix_operator.core.step import ACTIVE_REQUEUE
from hotfix_operator.core.traffic import SWITCH_CONFIRM_SECONDS
from tests.core.world import APP, BLUE_IMAGE, TERMINAL, World, drive, run_until
from tests.support.chaos import recorded_moves
from tests.support.releases import HOTFIX_IMAGE, T0, release_object, release_spec


def make_release(approvals: tuple[tuple[str, str], ...] = (), abort: bool = False, **rollout: Any) -> Release:
    timings = {"progressDeadlineSeconds": 30, "bakeSeconds": 5, "scaleDownDelaySeconds": 2, **rollout}
    spec = release_spec(approvals=approvals, rollout=timings)
    if abort:
        spec["abort"] = {"by": "alice", "reason": "wrong commit"}
    return release_object(spec)


def approved(**rollout: Any) -> Release:
    return make_release((("bob", "Approve"),), **rollout)


def aborted(release: Release, by: str = "bob", reason: str = "error rate doubled") -> Release:
    return release.model_copy(update={"spec": release.spec.model_copy(update={"abort": Abort(by=by, reason=reason)})})


def phases(status: Status) -> list[str]:
    return [e.action for e in status.audit if e.action in {p.value for p in Phase}]


class TestHappyPath:
    def test_an_approved_hotfix_ends_succeeded_with_the_cluster_in_its_original_shape(self) -> None:
        world = World(approved())
        status, _ = drive(world)
        assert status.phase == Phase.SUCCEEDED
        assert phases(status) == ["Pending", "Verifying", "AwaitingApproval", "Deploying", "Promoted", "Finalizing",
                                  "Succeeded"]
        assert world.selector == APP and world.preview_selector == APP
        assert world.blue.template["spec"]["containers"][0]["image"] == HOTFIX_IMAGE
        assert world.green is not None and world.green.deleted
        assert status.condition("Ready") is not None and status.condition("Ready").status == "True"  # type: ignore[union-attr]

    def test_the_waits_for_green_and_for_the_fold_are_said_by_the_step_that_starts_them(self) -> None:
        """A person reads at once what the release waits for, and while only time passes the next reconcile
        says exactly the same, so there is no progress line to write (controller: only_progress)."""
        world = World(approved(), green_ready_after=3)
        world.blue.ready_after = 3  # the fold's rollout takes a while too
        status = Status()
        for started in (lambda s: s.timestamps.green_created is not None,
                        lambda s: s.timestamps.fold_started is not None):
            status = run_until(world, status, started)
            world.tick()
            again = reconcile(world.release, status, world.observe(status)).status
            assert again.phase == status.phase and again.message == status.message, (status.message, again.message)
            assert [(c.type, c.message) for c in again.conditions] == [(c.type, c.message) for c in status.conditions]
        assert status.message == ("waiting for Deployment checkout to finish rolling out the hotfix image (0/3 "
                                  "updated); traffic stays on green")

    def test_while_green_comes_up_it_says_it_waits_and_rolls_back_only_at_the_deadline(self) -> None:
        world = World(approved(), green_ready_after=None)
        status = run_until(world, Status(), lambda s: s.timestamps.green_created is not None)
        world.tick()
        status = reconcile(world.release, status, world.observe()).status
        assert status.phase == Phase.DEPLOYING
        assert status.message.startswith("waiting for green checkout-hotfix-") and "in time" not in status.message
        world.tick(31)
        status = reconcile(world.release, status, world.observe()).status
        assert status.phase == Phase.ROLLING_BACK
        assert "was not available in time" in next(e.detail for e in status.audit if e.action == "RollingBack")

    def test_a_wait_on_the_cluster_looks_again_at_its_deadline_and_otherwise_only_as_a_fallback(self) -> None:
        # the watches wake a waiting release as soon as what it waits on changes, so its requeue is a fallback;
        # a deadline, though, must be seen to pass when nothing changes
        world = World(approved(), green_ready_after=None)
        status = run_until(world, Status(), lambda s: s.timestamps.green_created is not None)
        world.tick()
        decision = reconcile(world.release, status, world.observe())
        assert decision.status.phase == Phase.DEPLOYING and decision.requeue_after == ACTIVE_REQUEUE
        world.tick(27)  # 28 of the 30 s progress deadline gone
        decision = reconcile(world.release, decision.status, world.observe())
        assert decision.status.phase == Phase.DEPLOYING and decision.requeue_after == 3.0
        world.tick(3)
        assert reconcile(world.release, decision.status, world.observe()).status.phase == Phase.ROLLING_BACK

    def test_a_wait_on_a_rollout_alone_is_not_woken_by_pods_and_every_other_wait_is(self) -> None:
        # the rollout's progress is in the Deployment's status, whose watch wakes it; pods change several
        # times per pod while a Deployment rolls, and none of that changes the decision
        world = World(approved(), green_ready_after=None)
        status = run_until(world, Status(), lambda s: s.timestamps.green_created is not None)
        world.tick()
        waiting = reconcile(world.release, status, world.observe())
        assert waiting.status.phase == Phase.DEPLOYING and not waiting.wakes_on_pods
        assert ANY_POD not in watched_objects(world.release, waiting.status, pods=waiting.wakes_on_pods)
        world = World(approved(bakeSeconds=600))
        status = run_until(world, Status(), lambda s: s.phase == Phase.PROMOTED)
        switching = reconcile(world.release, status, world.observe())
        assert switching.wakes_on_pods, "a switch is confirmed against the pods' readiness"
        assert ANY_POD in watched_objects(world.release, switching.status, pods=switching.wakes_on_pods)

    def test_status_identifies_the_incident_and_the_sla(self) -> None:
        status = reconcile(approved(), Status(), World(approved()).observe()).status
        assert status.incident_id == "INC-20261123-091200" == incident_id(T0)
        assert status.sla_deadline == T0 + datetime.timedelta(minutes=30)
        assert status.tag == "v4.1.2-hotfix.1"

    def test_traffic_moves_blue_then_green_then_folded_blue(self) -> None:
        world = World(approved())
        seen: list[str | None] = []

        def note_selector(status: Status) -> bool:
            if not seen or seen[-1] != world.selector.get(POD_TEMPLATE_HASH, "original"):
                seen.append(world.selector.get(POD_TEMPLATE_HASH, "original"))
            return status.phase == Phase.SUCCEEDED

        status = run_until(world, Status(), note_selector)
        bg = status.blue_green
        assert seen == ["original", bg.blue_hash, bg.green_hash, bg.folded_hash, "original"]

    def test_green_is_blue_template_with_the_hotfix_image_and_its_own_labels(self) -> None:
        world = World(approved())
        run_until(world, Status(), lambda _: world.green is not None, steps=10)
        assert world.green is not None
        labels = world.green.template["metadata"]["labels"]
        assert labels["app"] == "checkout" and labels["tier"] == "web" and labels["hotfix.dev/role"] == "green"
        assert world.green.template["spec"]["containers"][0]["image"] == HOTFIX_IMAGE
        assert world.blue.template["spec"]["containers"][0]["image"] == BLUE_IMAGE


class TestPhasesBeforeProductionChainOnTheirGatesAnswersOnly:
    """The shell asks a gate only for the phase that decides on it; a phase runs in the reconcile that entered
    it only when its answer is there."""

    def test_with_every_answer_one_decision_goes_from_pending_to_deploying(self) -> None:
        world = World(approved())
        filed = reconcile(world.release, Status(), world.observe()).status
        decision = reconcile(world.release, filed, world.observe())
        assert decision.status.phase == Phase.DEPLOYING
        assert phases(decision.status) == ["Pending", "Verifying", "AwaitingApproval", "Deploying"]
        assert [e.reason for e in decision.events] == ["Verifying", "AwaitingApproval", "Approved"]

    def test_verifying_is_not_decided_before_the_queue_is_looked_up(self) -> None:
        world = World(approved())
        filed = reconcile(world.release, Status(), world.observe()).status
        unlooked = dataclasses.replace(world.observe(), queue_ahead=None)
        decision = reconcile(world.release, filed, unlooked)
        assert decision.status.phase == Phase.VERIFYING and decision.status.queued_behind is None

    def test_a_release_behind_another_for_its_deployment_is_queued_in_the_same_decision(self) -> None:
        world = World(approved())
        world.queue_ahead = ("checkout-hotfix-earlier",)
        filed = reconcile(world.release, Status(), world.observe()).status
        decision = reconcile(world.release, filed, world.observe())
        assert decision.status.phase == Phase.QUEUED and decision.status.queued_behind == "checkout-hotfix-earlier"
        assert not decision.actions

    def test_awaiting_approval_is_not_judged_without_the_approvers_rights(self) -> None:
        world = World(approved())
        filed = reconcile(world.release, Status(), world.observe()).status
        decision = reconcile(world.release, filed, dataclasses.replace(world.observe(), approvals=None))
        assert decision.status.phase == Phase.AWAITING_APPROVAL and not decision.actions
        # it says how to approve, and does not claim the rules are unreadable: they were not asked yet
        assert "kubectl hotfix approve" in decision.status.message and "cannot read" not in decision.status.message


class TestRefusals:
    def test_a_missing_target_is_rejected_without_any_action(self) -> None:
        world = World(approved())
        status = reconcile(world.release, Status(), world.observe()).status
        obs = world.observe()
        decision = reconcile(world.release, status, obs.__class__(**{**obs.__dict__, "blue": None}))
        assert decision.status.phase == Phase.REJECTED
        assert decision.actions == ()
        cond = decision.status.condition("InputValid")
        assert cond is not None and cond.reason == "TargetNotFound"
        assert decision.status.message == "Deployment shop/checkout does not exist"

    def test_a_permanent_image_problem_rejects_and_a_transient_one_retries(self) -> None:
        world = World(approved())
        pending = reconcile(world.release, Status(), world.observe()).status
        world.image_check = ImageCheck(ok=False, reason="DigestMismatch", message="served bytes hash to sha256:ee")
        rejected = reconcile(world.release, pending, world.observe())
        assert rejected.status.phase == Phase.REJECTED and rejected.status.message == "served bytes hash to sha256:ee"
        world.image_check = ImageCheck(ok=False, transient=True, reason="RegistryUnavailable", message="timeout")
        retry = reconcile(world.release, pending, world.observe())
        assert retry.status.phase == Phase.PENDING
        assert retry.requeue_after is not None and retry.requeue_after > 0

    def test_a_service_pinned_by_someone_else_is_refused(self) -> None:
        world = World(approved())
        world.selector = {**APP, POD_TEMPLATE_HASH: "abc"}
        status, _ = drive(world)
        assert status.phase == Phase.REJECTED and "ServiceAlreadyPinned" in [
            e.reason for e in reconcile(world.release, Status(phase=Phase.PENDING), world.observe()).events
        ]


class TestApprovals:
    def test_without_approval_it_waits_and_says_how_to_approve(self) -> None:
        world = World(make_release())
        status = Status()
        for _ in range(4):
            decision = reconcile(world.release, status, world.observe())
            status = decision.status
        assert status.phase == Phase.AWAITING_APPROVAL
        assert status.approvals == "0/1"
        assert "/spec/approval/approvals/-" in status.message and "other than alice" in status.message

    def test_the_requester_cannot_approve_their_own_hotfix(self) -> None:
        world = World(make_release((("alice", "Approve"),)))
        status = Status()
        for _ in range(4):
            status = reconcile(world.release, status, world.observe()).status
        assert status.phase == Phase.AWAITING_APPROVAL
        cond = status.condition("Approved")
        assert cond is not None and "alice requested this hotfix and cannot approve it" in cond.message

    def test_a_reject_decision_rejects_and_names_who(self) -> None:
        world = World(make_release((("carol", "Reject"), ("bob", "Approve"))))
        status, _ = drive(world)
        assert status.phase == Phase.REJECTED
        assert status.message == "rejected by carol"
        assert world.green is None and world.selector == APP


class TestRollback:
    def test_a_green_that_never_becomes_available_rolls_back_after_the_deadline(self) -> None:
        world = World(approved(progressDeadlineSeconds=10), green_ready_after=None)
        status, _ = drive(world)
        assert status.phase == Phase.ROLLED_BACK
        assert "exceeded quota" in status.message
        assert world.selector == APP and world.preview_selector == APP
        assert world.blue.template["spec"]["containers"][0]["image"] == BLUE_IMAGE
        assert world.green is not None and world.green.deleted
        stalled = status.condition("Stalled")
        assert stalled is not None and stalled.status == "True"

    def test_with_auto_rollback_off_a_failure_stops_and_abort_then_rolls_back(self) -> None:
        world = World(approved(progressDeadlineSeconds=10, autoRollback=False), green_ready_after=None)
        status, _ = drive(world)
        assert status.phase == Phase.FAILED
        assert "set spec.abort (by, reason)" in status.message
        assert world.selector.get(POD_TEMPLATE_HASH) is not None, "left for a person, pinned to blue"
        world.release = aborted(world.release)
        status, _ = drive(world, status)
        assert status.phase == Phase.ROLLED_BACK and world.selector == APP

    def test_abort_before_deployment_rejects_naming_who_and_why(self) -> None:
        world = World(make_release(abort=True))
        status, _ = drive(world)
        assert status.phase == Phase.REJECTED and "nothing in production changed" in status.message
        assert "aborted by alice: wrong commit" in status.message
        assert status.audit[-1].actor == "alice"

    def test_abort_while_folding_puts_blue_back_without_a_dark_moment(self) -> None:
        world = World(approved())
        status = run_until(world, Status(), lambda s: world.blue.template["spec"]["containers"][0]["image"]
                           == HOTFIX_IMAGE)  # the Deployment is rolling to the hotfix image
        assert status.phase == Phase.FINALIZING
        world.release = aborted(world.release)
        status, _ = drive(world, status, never_dark=True)
        assert status.phase == Phase.ROLLED_BACK and "aborted by bob: error rate doubled" in status.message
        assert world.blue.template["spec"]["containers"][0]["image"] == BLUE_IMAGE
        assert world.selector == APP and world.preview_selector == APP
        assert world.green is not None and world.green.deleted

    def test_a_fold_whose_record_never_landed_is_counted_and_an_abort_still_rolls_the_deployment_back(self) -> None:
        world = World(approved())
        status = run_until(world, Status(), lambda s: s.phase == Phase.PROMOTED)
        for _ in range(20):  # the operator stops between the fold's image write and the status that records it
            decision = reconcile(world.release, status, world.observe())
            if decision.status.phase == Phase.FINALIZING:
                assert ahead_of_status(decision.actions) == (
                    SetContainerImage("checkout", "app", HOTFIX_IMAGE, ahead_of_status=True),)
                world.apply(decision.actions[0])
                break
            status = decision.status
            world.tick()
        assert status.phase == Phase.PROMOTED and status.timestamps.fold_started is None
        world.release = aborted(world.release)
        status, decisions = drive(world, status, never_dark=True)
        assert status.phase == Phase.ROLLED_BACK
        assert world.blue.template["spec"]["containers"][0]["image"] == BLUE_IMAGE
        assert [e.action for e in status.audit].count("FoldUnrecorded") == 1
        assert any(e.reason == "FoldUnrecorded" and e.type == "Warning" for d in decisions for e in d.events)

    def test_abort_after_the_fold_switched_traffic_goes_back_through_green(self) -> None:
        world = World(approved(scaleDownDelaySeconds=60))
        status = run_until(world, Status(), lambda s: s.timestamps.folded is not None)
        world.release = aborted(world.release)
        status, _ = drive(world, status, never_dark=True)
        assert status.phase == Phase.ROLLED_BACK
        assert world.blue.template["spec"]["containers"][0]["image"] == BLUE_IMAGE
        switched = [e.detail for e in status.audit if e.action == "TrafficSwitched"]
        assert len(switched) == 4, switched  # blue->green, green->folded, folded->green, green->blue

    def test_abort_after_success_is_recorded_once_and_changes_nothing(self) -> None:
        world = World(approved())
        status, _ = drive(world)
        world.release = aborted(world.release)
        for _ in range(3):
            decision = reconcile(world.release, status, world.observe())
            status = decision.status
            assert decision.actions == ()
        assert status.phase == Phase.SUCCEEDED
        assert [e.action for e in status.audit].count("AbortIgnored") == 1


class TestBookkeeping:
    def test_a_condition_keeps_its_transition_time_while_its_status_holds(self) -> None:
        world = World(make_release())
        first = reconcile(world.release, Status(), world.observe()).status
        world.tick(30)
        second = reconcile(world.release, first, world.observe()).status
        world.tick(30)
        third = reconcile(world.release, second, world.observe()).status
        a, b = second.condition("Reconciling"), third.condition("Reconciling")
        assert a is not None and b is not None and a.last_transition_time == b.last_transition_time

    def test_the_audit_trail_is_bounded(self) -> None:
        entries = tuple(AuditEntry(time=T0, actor="x", action="Old", detail=str(i)) for i in range(AUDIT_LIMIT))
        world = World(make_release())
        status = reconcile(world.release, Status(audit=entries), world.observe()).status
        assert len(status.audit) == AUDIT_LIMIT
        assert status.audit[-1].action == "Pending"


@settings(max_examples=150, deadline=None)
@given(
    crashes=st.lists(
        st.sampled_from(["none", "before-status", "after-ahead", "after-status", "mid-actions"]), min_size=300,
        max_size=300
    ),
    scenario=st.sampled_from(["green-comes-up", "green-never-up", "aborted-during-bake", "aborted-at-the-switch",
                              "aborted-at-the-fold"]),
    tick_seconds=st.lists(st.floats(min_value=0.2, max_value=4.0), min_size=300, max_size=300),
    endpoint_syncs=st.lists(st.booleans(), min_size=300, max_size=300),
)
def test_crashes_between_any_two_steps_converge_and_never_blackhole_traffic(
    crashes: list[str], scenario: str, tick_seconds: list[float], endpoint_syncs: list[bool]
) -> None:
    """The shell persists status first, then acts, except for the actions marked to go ahead of the write
    (the switch to green, the fold's image); a crash can land anywhere, and the EndpointSlices follow the
    selector late or stall for a while. Whatever the schedule, the release ends Succeeded (green up) or
    RolledBack (green never up, or aborted during the bake, at the switch or once the fold's image is out,
    recorded or not), with blue's image back, the Services end with their original selectors, the active
    Service never has zero ready endpoints on the way, and status.audit accounts for every move of its
    selector, in order (as the chaos test checks against the API server's audit log)."""
    # When green can come up, the deadline is one no crash schedule can outlast (300 steps of at most 4 s),
    # so the scenario decides the outcome; a schedule that starves progress past a short deadline rolls
    # back, correctly, and is covered by the case where green never comes up.
    comes_up = scenario != "green-never-up"
    world = World(approved(progressDeadlineSeconds=3600 if comes_up else 20), green_ready_after=2 if comes_up else None,
                  endpoint_syncs=iter(endpoint_syncs))
    persisted = Status()
    for crash, seconds in zip(crashes, tick_seconds, strict=True):
        if scenario == "aborted-during-bake" and persisted.phase == Phase.PROMOTED and not world.release.spec.abort:
            world.release = aborted(world.release)
        on_green = world.green is not None and world.selector.get(POD_TEMPLATE_HASH) == world.green.current_hash
        if scenario == "aborted-at-the-switch" and on_green and not world.release.spec.abort:
            world.release = aborted(world.release)  # before the switch is confirmed, or recorded at all
        folding = world.blue.template["spec"]["containers"][0]["image"] == HOTFIX_IMAGE
        if scenario == "aborted-at-the-fold" and folding and not world.release.spec.abort:
            world.release = aborted(world.release)  # the fold's image is out, its record may not be
        decision = reconcile(world.release, persisted, world.observe())
        if crash == "after-ahead":
            for action in ahead_of_status(decision.actions):
                world.apply(action)
        elif crash != "before-status":
            persisted = decision.status
            actions = decision.actions[: len(decision.actions) // 2] if crash == "mid-actions" else decision.actions
            if crash != "after-status":
                for action in actions:
                    world.apply(action)
                    assert world.serving() > 0, f"no ready endpoints after {action}"
        if persisted.phase in TERMINAL and crash == "none" and not decision.actions:
            break
        world.tick(seconds)
        assert world.serving() > 0, f"no ready endpoints in {persisted.phase} with selector {world.selector}"
    else:
        persisted, _ = drive(world, persisted, never_dark=True)
    # a schedule whose EndpointSlices stall until the last step never reaches the fold, so nobody aborts
    succeeds = scenario == "green-comes-up" or (scenario == "aborted-at-the-fold" and not world.release.spec.abort)
    expected = Phase.SUCCEEDED if succeeds else Phase.ROLLED_BACK
    assert persisted.phase == expected, persisted.message
    assert world.selector == APP and world.preview_selector == APP
    expected_image = HOTFIX_IMAGE if succeeds else BLUE_IMAGE
    assert world.blue.template["spec"]["containers"][0]["image"] == expected_image
    assert world.green is None or world.green.deleted
    if len(persisted.audit) < AUDIT_LIMIT:
        moves = recorded_moves(e.model_dump() for e in persisted.audit)
        assert list(moves.sequence) == world.selector_moves, (moves, [(e.action, e.detail) for e in persisted.audit])


def test_a_terminal_phase_is_never_entered_with_actions_still_to_run() -> None:
    for comes_up in (True, False):
        world = World(approved(progressDeadlineSeconds=10), green_ready_after=2 if comes_up else None)
        _, decisions = drive(world)
        for decision in decisions:
            if decision.status.phase in TERMINAL:
                assert decision.actions == ()


class TestProvenanceGate:
    def test_verified_provenance_is_recorded_before_approval_is_asked(self) -> None:
        world = World(make_release())
        status = Status()
        for _ in range(4):
            status = reconcile(world.release, status, world.observe()).status
        assert status.phase == Phase.AWAITING_APPROVAL
        assert status.provenance is not None and status.provenance["commitSha"] == "a" * 40
        cond = status.condition("ProvenanceVerified")
        assert cond is not None and cond.status == "True"
        assert "signed by key release" in cond.message
        assert "ProvenanceVerified" in [e.action for e in status.audit]

    def test_a_failed_gate_rejects_with_its_reason_and_nothing_is_deployed(self) -> None:
        world = World(approved())
        world.provenance = ProvenanceCheck(ok=False, reason="CommitMismatch", message="provenance commit d37a7f7… ≠ "
                                           "requested a8b1963…", policy="test")
        status, _ = drive(world)
        assert status.phase == Phase.REJECTED
        cond = status.condition("ProvenanceVerified")
        assert cond is not None and cond.reason == "CommitMismatch"
        assert world.green is None and world.selector == APP

    def test_a_registry_outage_backs_off_and_never_skips_the_gate(self) -> None:
        world = World(approved())
        world.provenance = ProvenanceCheck(ok=False, reason="RegistryUnavailable", message="timeout", transient=True)
        status = Status()
        delays = []
        for _ in range(8):
            decision = reconcile(world.release, status, world.observe())
            status = decision.status
            if status.phase == Phase.VERIFYING and decision.requeue_after:
                delays.append(decision.requeue_after)
        assert status.phase == Phase.VERIFYING
        assert delays == sorted(delays) and delays[-1] > delays[0], "backs off"
        world.provenance = World(approved()).provenance
        status, _ = drive(world, status)
        assert status.phase == Phase.SUCCEEDED


def green_ips(world: World, status: Status) -> frozenset[str]:
    assert status.blue_green.green_hash is not None
    return world.ready_ips().get(status.blue_green.green_hash, frozenset())


def blue_ips(world: World, status: Status) -> frozenset[str]:
    assert status.blue_green.blue_hash is not None
    return world.ready_ips().get(status.blue_green.blue_hash, frozenset())


def deletes_green(decisions: list[Decision]) -> bool:
    return any(isinstance(a, DeleteDeployment) for d in decisions for a in d.actions)


class TestTrafficMovesOnlyWhenSeen:
    """Nothing that serves, or that the Service would fall back to, is removed before the
    EndpointSlices show the other side serving; every "since the switch" timer starts when it is seen."""

    def test_a_rollback_keeps_green_until_the_endpoint_slices_show_blue_again(self) -> None:
        world = World(approved(bakeSeconds=600))
        status = run_until(world, Status(), lambda s: s.timestamps.promoted is not None)
        world.stall_endpoints()
        world.release = aborted(world.release)
        decisions: list[Decision] = []
        stalled_for = int(SWITCH_CONFIRM_SECONDS) + 10
        for _ in range(stalled_for):
            status = run_until(world, status, lambda s: True, decisions=decisions)
            world.tick()
        assert status.phase == Phase.ROLLING_BACK
        assert not deletes_green(decisions) and world.green is not None and not world.green.deleted
        assert world.selector == {**APP, POD_TEMPLATE_HASH: status.blue_green.blue_hash}, "the selector moved"
        cond = status.condition("TrafficSwitched")
        assert cond is not None and cond.reason == "EndpointsNotConfirmed"
        assert "both sides are kept running" in status.message and "kube-controller-manager" in status.message
        warned = [e for d in decisions for e in d.events if e.reason == "EndpointsNotConfirmed"]
        assert len(warned) == 1 and warned[0].type == "Warning"
        unstalled_at = world.now
        world.stall_endpoints(False)
        status, _ = drive(world, status, never_dark=True)
        assert status.phase == Phase.ROLLED_BACK
        assert status.timestamps.blue_restored is not None and status.timestamps.blue_restored >= unstalled_at
        back = [e for e in status.audit if e.action == "TrafficSwitched"][-1]
        assert back.time == status.timestamps.blue_restored and "only blue pods" in back.detail

    def test_the_terminal_phase_is_written_only_once_blue_is_seen_serving(self) -> None:
        world = World(approved(bakeSeconds=600))
        status = run_until(world, Status(), lambda s: s.timestamps.promoted is not None)
        world.release = aborted(world.release)
        world.stall_endpoints()
        status = run_until(world, status, lambda s: s.phase == Phase.ROLLING_BACK)
        for _ in range(5):
            status = run_until(world, status, lambda s: True)
            assert status.phase == Phase.ROLLING_BACK and "blue serves" not in status.message
            world.tick()

    def test_the_fold_removes_green_only_after_the_folded_deployment_is_seen_serving(self) -> None:
        world = World(approved(scaleDownDelaySeconds=2))
        status = run_until(world, Status(), lambda s: s.blue_green.folded_hash is not None)
        world.stall_endpoints()  # the selector now names the folded hash; the EndpointSlices still list green
        decisions: list[Decision] = []
        for _ in range(20):
            status = run_until(world, status, lambda s: True, decisions=decisions)
            world.tick()
        assert status.phase == Phase.FINALIZING and not deletes_green(decisions)
        assert world.published == green_ips(world, status), "green still serves all traffic"
        unstalled_at = world.now
        world.stall_endpoints(False)
        decisions = []
        status, _ = drive(world, status, never_dark=True)
        folded = status.timestamps.folded
        assert status.phase == Phase.SUCCEEDED and folded is not None and folded >= unstalled_at

    def test_the_original_selector_comes_back_only_once_the_endpoint_slice_controller_counts_green_out(
            self) -> None:
        world = World(approved(bakeSeconds=600))
        status = run_until(world, Status(), lambda s: s.timestamps.promoted is not None)
        world.lag_pod_view()  # from here the controller counts green's pods as ready, even once they are gone
        world.release = aborted(world.release)
        blue = blue_ips(world, status)
        for _ in range(30):
            status = run_until(world, status, lambda s: True)
            world.tick()
        assert world.green is not None and world.green.deleted, "green was removed once blue was seen serving"
        assert status.phase == Phase.ROLLING_BACK and "preview Service checkout-preview" in status.message
        assert world.selector == {**APP, POD_TEMPLATE_HASH: status.blue_green.blue_hash}, "the selector came back"
        assert world.preview_published - blue, "the preview still lists the green pods the controller counts"
        world.lag_pod_view(False)
        while status.phase not in TERMINAL:
            status = run_until(world, status, lambda s: True)
            if world.selector == APP:
                assert world.published <= blue, f"{sorted(world.published)} listed with the original selector"
            world.tick()
        assert status.phase == Phase.ROLLED_BACK and world.published and world.published <= blue

    def test_the_fold_gives_the_original_selector_back_only_once_green_is_counted_out(self) -> None:
        world = World(approved(scaleDownDelaySeconds=2))
        status = run_until(world, Status(), lambda s: s.timestamps.folded is not None)
        world.lag_pod_view()
        for _ in range(30):
            status = run_until(world, status, lambda s: True)
            world.tick()
        folded = status.blue_green.folded_hash
        assert folded is not None and world.green is not None and world.green.deleted
        assert status.phase == Phase.FINALIZING and world.selector == {**APP, POD_TEMPLATE_HASH: folded}
        world.lag_pod_view(False)
        status, _ = drive(world, status, never_dark=True)
        assert status.phase == Phase.SUCCEEDED and world.selector == APP
        assert world.published == world.ready_ips()[folded]

    def test_the_bake_is_counted_from_the_switch_seen_on_the_endpoint_slices(self) -> None:
        bake = 5
        world = World(approved(bakeSeconds=bake), endpoint_syncs=iter([False, False, True] * 50))
        # approved from the start: Verifying and AwaitingApproval pass in the reconcile after Pending
        status = run_until(world, Status(), lambda s: s.phase == Phase.DEPLOYING)
        while status.phase != Phase.PROMOTED:  # deploy until the decision to switch, then crash before acting
            decision = reconcile(world.release, status, world.observe())
            status = decision.status
            if status.phase != Phase.PROMOTED:
                for action in decision.actions:
                    world.apply(action)
                world.tick()
        world.tick(4)  # the operator is down for 4 s: nothing switched yet
        assert world.published.isdisjoint(green_ips(world, status))
        on_green = 0.0
        while status.phase == Phase.PROMOTED:
            decision = reconcile(world.release, status, world.observe())
            status = decision.status
            for action in decision.actions:
                world.apply(action)
            world.tick()
            if world.published and world.published <= green_ips(world, status):
                on_green += 1
        assert on_green >= bake, f"green carried all traffic for {on_green}s of a {bake}s bake"
        switched = [e for e in status.audit if e.action == "TrafficSwitched"]
        assert len(switched) == 1 and switched[0].time == status.timestamps.promoted

    def test_every_phase_that_holds_traffic_reasserts_both_services(self) -> None:
        world = World(approved(bakeSeconds=600))
        status = run_until(world, Status(), lambda s: s.timestamps.promoted is not None)
        world.selector, world.preview_selector = dict(APP), dict(APP)  # someone edits both Services by hand
        decision = reconcile(world.release, status, world.observe())
        green = {**APP, POD_TEMPLATE_HASH: status.blue_green.green_hash}
        assert {(a.service, tuple(sorted(a.selector.items()))) for a in decision.actions
                if isinstance(a, SetServiceSelector)} == {("checkout", tuple(sorted(green.items()))),
                                                          ("checkout-preview", tuple(sorted(green.items())))}


def test_only_a_message_change_is_progress() -> None:
    from hotfix_operator.core.conditions import set_condition
    from hotfix_operator.core.lifecycle import only_progress

    base = Status(phase=Phase.DEPLOYING, message="0/3", conditions=set_condition(
        (), ConditionType.GREEN_AVAILABLE, "False", "Progressing", "0/3", generation=1, now=T0))
    said = base.model_copy(update={"message": "1/3", "conditions": set_condition(
        base.conditions, ConditionType.GREEN_AVAILABLE, "False", "Progressing", "1/3", generation=1, now=T0)})
    assert only_progress(base, said)
    assert not only_progress(base, base)
    assert not only_progress(base, said.model_copy(update={"phase": Phase.PRE_PROMOTION}))
    assert not only_progress(base, said.model_copy(update={"conditions": set_condition(
        base.conditions, ConditionType.GREEN_AVAILABLE, "True", "Available", "3/3", generation=1, now=T0)}))
