"""Undo after success (core.undo), on the toy cluster: the previous version comes back through the
blue-green path in reverse, checked and confirmed on the EndpointSlices; a failed check leaves the
hotfix serving; refusals change nothing; a crash between any two steps still ends Undone."""

from __future__ import annotations

import datetime
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from hotfix_operator.api import POD_TEMPLATE_HASH, ROLE_PREVIOUS, CheckPhase, ConditionType, Phase, Reason
from hotfix_operator.core.actions import CreateDeployment, SetContainerImage
from hotfix_operator.core.check_model import Checks
from hotfix_operator.core.checks import plan
from hotfix_operator.core.governance import GovernanceRules
from hotfix_operator.core.lifecycle import checks_due, is_finished, reconcile, watched_objects
from hotfix_operator.core.model import Abort, Release, Status, Undo
from hotfix_operator.core.observations import CheckPlan
from hotfix_operator.core.undo import observed_green, undo_name
from hotfix_operator.core.undo_request import STAGE
from tests.core.test_lifecycle_checks import ERRORS, HEALTH, answers
from tests.core.world import APP, BLUE_IMAGE, TERMINAL, World, drive
from tests.support.releases import HOTFIX_IMAGE, release_object, release_spec


def hotfix(pre: tuple[dict[str, Any], ...] = (), post: tuple[dict[str, Any], ...] = (), **rollout: Any) -> Release:
    timings = {"progressDeadlineSeconds": 30, "bakeSeconds": 3, "scaleDownDelaySeconds": 1, **rollout}
    spec = release_spec(approvals=(("bob", "Approve"),), rollout=timings,
                        checks={"prePromotion": list(pre), "postPromotion": list(post)})
    return release_object(spec)


def succeeded(release: Release | None = None, rules: GovernanceRules | None = None) -> tuple[World, Status]:
    release = release or hotfix()
    world = World(release, rules=rules or GovernanceRules())
    world.check_plan = CheckPlan(ok=True, states=plan(Checks(), release.spec.checks))
    status, _ = drive(world, never_dark=True)
    assert status.phase == Phase.SUCCEEDED, status.message
    assert world.blue.template["spec"]["containers"][0]["image"] == HOTFIX_IMAGE
    return world, status


def with_undo(release: Release, by: str = "alice", reason: str = "p99 latency doubled since the hotfix") -> Release:
    return release.model_copy(update={"spec": release.spec.model_copy(update={"undo": Undo(by=by, reason=reason)})})


def with_abort(release: Release, by: str = "bob") -> Release:
    abort = Abort(by=by, reason="stop")
    return release.model_copy(update={"spec": release.spec.model_copy(update={"abort": abort})})


def image(world: World) -> str:
    return str(world.blue.template["spec"]["containers"][0]["image"])


def phases(status: Status) -> list[str]:
    return [e.action for e in status.audit if e.action in {p.value for p in Phase}]


class TestUndo:
    def test_an_undo_brings_the_previous_version_back_through_the_blue_green_path(self) -> None:
        world, status = succeeded()
        forward = status.blue_green
        world.release = with_undo(world.release)
        seen_on_previous = False
        decisions = []
        for _ in range(200):
            decision = reconcile(world.release, status, world.observe(status))
            decisions.append(decision)
            status = decision.status
            for action in decision.actions:
                world.apply(action)
                assert world.serving() > 0
            if world.green is not None and not world.green.deleted and world.green.labels.get(
                    "hotfix.dev/role") == ROLE_PREVIOUS and world.selector.get(POD_TEMPLATE_HASH) == \
                    world.green.current_hash and world.published <= world.ready_ips()[world.green.current_hash]:
                seen_on_previous = True
            if status.phase in TERMINAL and not decision.actions:
                break
            world.tick()
            assert world.serving() > 0, status.message
        assert status.phase == Phase.UNDONE, status.message
        assert seen_on_previous, "traffic never reached the previous version's pods"
        assert image(world) == BLUE_IMAGE
        assert world.selector == APP and world.preview_selector == APP
        assert world.green is not None and world.green.deleted and world.green.name == undo_name(world.release)
        # the forward record the published evidence is built from is untouched
        assert status.blue_green == forward
        assert status.undo is not None and status.undo.previous_image == BLUE_IMAGE
        assert status.undo.times.switched is not None and status.undo.times.completed is not None
        assert phases(status)[-3:] == ["Succeeded", "Undoing", "Undone"]
        undone = status.condition(ConditionType.UNDONE)
        assert undone is not None and undone.status == "True" and "alice" in undone.message
        ready = status.condition(ConditionType.READY)
        assert ready is not None and ready.status == "True"
        events = [e for d in decisions for e in d.events]
        requested = next(e for e in events if e.reason == Reason.UNDO_REQUESTED)
        assert requested.actor == "alice" and "alice" in requested.message
        assert any(e.reason == Reason.UNDONE and "alice" in e.message for e in events)
        assert any(e.action == Reason.TRAFFIC_SWITCHED and "previous-version" in e.detail for e in status.audit)
        created = [a for d in decisions for a in d.actions if isinstance(a, CreateDeployment)]
        assert len({a.manifest["metadata"]["name"] for a in created}) == 1
        container = created[0].manifest["spec"]["template"]["spec"]["containers"][0]
        assert container["image"] == BLUE_IMAGE
        assert created[0].manifest["metadata"]["labels"]["hotfix.dev/role"] == ROLE_PREVIOUS
        # the Deployment is only rolled back once the previous version is seen serving
        set_image = next(i for i, d in enumerate(decisions) if any(isinstance(a, SetContainerImage) for a in d.actions))
        assert decisions[set_image].status.undo is not None
        assert decisions[set_image].status.undo.times.switched is not None

    def test_the_checks_run_again_against_the_previous_version_before_traffic_moves(self) -> None:
        world, status = succeeded(hotfix((HEALTH,)))
        forward_checks = status.checks
        world.answer = answers({"health": ["pass"]})
        world.measured.clear()
        world.measured_through.clear()
        world.release = with_undo(world.release)
        status, _ = drive(world, status, never_dark=True)
        assert status.phase == Phase.UNDONE, status.message
        assert status.checks == forward_checks  # the forward run's record stays
        assert status.undo is not None
        assert [(c.name, c.phase, c.measurements) for c in status.undo.checks] == [("health", CheckPhase.PASSED, 2)]
        switched = status.undo.times.switched
        assert switched is not None and world.measured and all(m.at <= switched for m in world.measured)
        # each was measured through a preview Service listing the previous version's pods alone
        assert world.measured_through == [(STAGE, frozenset({status.undo.blue_green.green_hash}))] * 2
        cond = status.condition(ConditionType.UNDO_CHECKS)
        assert cond is not None and cond.status == "True"

    def test_a_failing_check_leaves_the_hotfix_serving_and_says_why(self) -> None:
        world, status = succeeded(hotfix((HEALTH,)))
        world.answer = answers({"health": ["fail"]})
        world.release = with_undo(world.release)
        hotfix_hash = world.blue.current_hash
        for _ in range(100):
            decision = reconcile(world.release, status, world.observe(status))
            status = decision.status
            for action in decision.actions:
                world.apply(action)
            assert world.selector.get(POD_TEMPLATE_HASH) in (None, hotfix_hash)  # traffic never left the hotfix
            if status.phase in TERMINAL and not decision.actions:
                break
            world.tick()
        assert status.phase == Phase.UNDO_FAILED
        assert "check health" in status.message and "hotfix" in status.message
        assert image(world) == HOTFIX_IMAGE and world.selector == APP and world.preview_selector == APP
        assert world.green is not None and world.green.deleted
        assert is_finished(reconcile(world.release, status, world.observe(status)))

    def test_the_post_promotion_checks_run_again_during_the_undos_bake(self) -> None:
        world, status = succeeded(hotfix(post=(ERRORS,), bakeSeconds=1))
        forward_checks = status.checks
        world.answer = answers({"errors": ["pass"]})
        world.measured.clear()
        world.release = with_undo(world.release)
        status, _ = drive(world, status, never_dark=True)
        assert status.phase == Phase.UNDONE, status.message
        assert status.checks == forward_checks
        assert status.undo is not None
        assert [(c.name, c.phase, c.measurements) for c in status.undo.checks] == [("errors", CheckPhase.PASSED, 3)]
        switched, fold = status.undo.times.switched, status.undo.times.fold_started
        assert switched is not None and fold is not None
        # measured on the previous version (traffic on it), and the fold waited for all three past the 1 s bake
        assert world.measured and all(switched <= m.at <= fold for m in world.measured)
        assert (fold - switched).total_seconds() >= 2

    def test_a_post_promotion_check_failing_during_the_undos_bake_returns_traffic_to_the_hotfix(self) -> None:
        world, status = succeeded(hotfix(post=(ERRORS,), bakeSeconds=30))
        world.answer = answers({"errors": ["pass", "fail"]})
        world.release = with_undo(world.release)
        status, _ = drive(world, status, never_dark=True)
        assert status.phase == Phase.UNDO_FAILED, status.message
        assert "post-promotion check errors" in status.message and "the hotfix" in status.message
        assert image(world) == HOTFIX_IMAGE and world.selector == APP and world.preview_selector == APP
        assert world.green is not None and world.green.deleted
        assert status.undo is not None and status.undo.times.switched is not None, "it failed during the bake"
        cond = status.condition(ConditionType.UNDO_CHECKS)
        assert cond is not None and cond.status == "False" and "postPromotion check errors" in cond.message
        returned = [e for e in status.audit if e.action == Reason.TRAFFIC_SWITCHED]
        assert "hotfix" in returned[-1].detail

    def test_a_previous_version_that_never_comes_up_gives_up_with_the_hotfix_serving(self) -> None:
        world, status = succeeded(hotfix(progressDeadlineSeconds=10))
        world.green_ready_after = None
        world.release = with_undo(world.release)
        status, _ = drive(world, status, never_dark=True)
        assert status.phase == Phase.UNDO_FAILED and "not available within 10s" in status.message
        assert image(world) == HOTFIX_IMAGE and world.selector == APP

    def test_an_abort_after_the_undo_started_returns_to_the_hotfix(self) -> None:
        world, status = succeeded(hotfix(bakeSeconds=30))
        world.release = with_undo(world.release)
        for _ in range(60):
            decision = reconcile(world.release, status, world.observe(status))
            status = decision.status
            for action in decision.actions:
                world.apply(action)
            if status.undo is not None and status.undo.times.switched is not None:
                break
            world.tick()
        world.release = with_abort(world.release)
        status, _ = drive(world, status, never_dark=True)
        assert status.phase == Phase.UNDO_FAILED and "aborted by bob" in status.message
        assert image(world) == HOTFIX_IMAGE and world.selector == APP

    def test_an_abort_that_was_ignored_before_the_undo_does_not_stop_it(self) -> None:
        world, status = succeeded()
        world.release = with_abort(world.release)
        status, _ = drive(world, status)
        assert status.phase == Phase.SUCCEEDED
        world.release = with_undo(world.release)
        status, _ = drive(world, status, never_dark=True)
        assert status.phase == Phase.UNDONE

    def test_the_shell_observes_and_watches_the_helper_while_undoing(self) -> None:
        world, status = succeeded()
        world.release = with_undo(world.release)
        status = reconcile(world.release, status, world.observe(status)).status
        assert status.phase == Phase.UNDOING
        assert observed_green(world.release, status) == undo_name(world.release)
        assert ("Deployment", undo_name(world.release)) in watched_objects(world.release, status)


class TestRefusals:
    def assert_refused(self, world: World, status: Status, reason: str) -> Status:
        before_image, before_selector = image(world), dict(world.selector)
        decisions = []
        for _ in range(3):
            decision = reconcile(world.release, status, world.observe(status))
            decisions.append(decision)
            assert decision.actions == ()
            status = decision.status
            world.tick()
        assert status.phase == Phase.SUCCEEDED
        assert image(world) == before_image and world.selector == before_selector
        cond = status.condition(ConditionType.UNDONE)
        assert cond is not None and cond.status == "False" and cond.reason == reason
        assert "file a new HotfixRelease" in cond.message
        # recorded once, not on every reconcile
        assert [e.action for e in status.audit].count(Reason.UNDO_REFUSED) == 1
        assert sum(e.reason == Reason.UNDO_REFUSED for d in decisions for e in d.events) == 1
        assert status.undo is not None and status.undo.decision == "Refused"
        return status

    def test_outside_the_window_is_refused(self) -> None:
        world, status = succeeded(rules=GovernanceRules(undo_window_seconds=60))
        assert status.undo_window_seconds == 60
        world.now += datetime.timedelta(seconds=61)
        world.release = with_undo(world.release)
        self.assert_refused(world, status, Reason.UNDO_WINDOW_CLOSED)

    def test_a_deployment_changed_since_the_hotfix_is_refused(self) -> None:
        world, status = succeeded()
        world.apply(SetContainerImage("checkout", "app", "registry.example.com/shop/checkout:4.1.3"))
        for _ in range(3):
            world.tick()
        world.release = with_undo(world.release)
        self.assert_refused(world, status, Reason.UNDO_TARGET_CHANGED)

    def test_a_refused_undo_is_final(self) -> None:
        world, status = succeeded(rules=GovernanceRules(undo_window_seconds=60))
        world.now += datetime.timedelta(seconds=120)
        world.release = with_undo(world.release)
        status = self.assert_refused(world, status, Reason.UNDO_WINDOW_CLOSED)
        assert is_finished(reconcile(world.release, status, world.observe(status)))


class TestWindow:
    def test_a_succeeded_release_stays_in_view_until_the_window_closes(self) -> None:
        world, status = succeeded(rules=GovernanceRules(undo_window_seconds=600))
        decision = reconcile(world.release, status, world.observe(status))
        assert not is_finished(decision) and decision.requeue_after is not None
        assert decision.requeue_after <= 600
        world.now += datetime.timedelta(seconds=601)
        closing = reconcile(world.release, status, world.observe(status))  # one more look, then finished
        assert is_finished(reconcile(world.release, closing.status, world.observe(closing.status)))

    def test_no_checks_are_due_outside_an_undo(self) -> None:
        world, status = succeeded(hotfix((HEALTH,)))
        assert checks_due(status, world.now) == ()


@settings(max_examples=60, deadline=None)
@given(
    crashes=st.lists(st.sampled_from(["none", "before-status", "after-status", "mid-actions"]), min_size=200,
                     max_size=200),
    endpoint_syncs=st.lists(st.booleans(), min_size=200, max_size=200),
)
def test_crashes_between_any_two_undo_steps_converge_on_undone_and_never_go_dark(
        crashes: list[str], endpoint_syncs: list[bool]) -> None:
    world, persisted = succeeded(hotfix(progressDeadlineSeconds=3600))
    world.release = with_undo(world.release)
    world.endpoint_syncs = iter(endpoint_syncs)
    for crash in crashes:
        decision = reconcile(world.release, persisted, world.observe(persisted))
        if crash != "before-status":
            persisted = decision.status
            actions = decision.actions[: len(decision.actions) // 2] if crash == "mid-actions" else decision.actions
            if crash != "after-status":
                for action in actions:
                    world.apply(action)
                    assert world.serving() > 0, f"no ready endpoints after {action}"
        if persisted.phase in TERMINAL and persisted.phase != Phase.SUCCEEDED and crash == "none" and \
                not decision.actions:
            break
        world.tick()
        assert world.serving() > 0, f"no ready endpoints in {persisted.phase}: {persisted.message}"
    else:
        persisted, _ = drive(world, persisted, never_dark=True)
    assert persisted.phase == Phase.UNDONE, persisted.message
    assert image(world) == BLUE_IMAGE and world.selector == APP and world.preview_selector == APP
    assert world.green is not None and world.green.deleted


def test_the_reconcile_that_succeeds_already_keeps_the_release_in_view() -> None:
    world = World(hotfix(), rules=GovernanceRules(undo_window_seconds=600))
    _, decisions = drive(world)
    assert decisions[-1].status.phase == Phase.SUCCEEDED and not is_finished(decisions[-1])


def test_once_the_window_passed_the_release_says_so_for_the_api_server() -> None:
    world, status = succeeded(rules=GovernanceRules(undo_window_seconds=60))
    world.now += datetime.timedelta(seconds=61)
    decision = reconcile(world.release, status, world.observe(status))
    # not finished in the decision that closes it: an undo accepted before that write gets one more look
    assert decision.status.undo_window_closed is True and not is_finished(decision)
    assert is_finished(reconcile(world.release, decision.status, world.observe(decision.status)))
    late = with_undo(world.release)
    judged = reconcile(late, decision.status, world.observe(decision.status)).status
    assert judged.undo is not None and judged.undo.decision == "Refused"
    cond = judged.condition(ConditionType.UNDONE)
    assert cond is not None and cond.reason == Reason.UNDO_WINDOW_CLOSED


def test_after_an_undo_the_release_notes_are_told_once_and_only_after_the_release_is_published() -> None:
    from hotfix_operator.core import followup
    from hotfix_operator.core.followup_results import UndoNoteResult
    from hotfix_operator.core.model import ReleaseArea

    world, status = succeeded()
    world.release = with_undo(world.release)
    status, _ = drive(world, status)
    config = followup.Config()
    published = status.model_copy(update={"release": ReleaseArea(tagged=True, url="https://gh/r/1")})
    assert followup.plan(world.release, status, world.now, config).step == followup.Step.TAG
    assert followup.plan(world.release, published, world.now, config).step == followup.Step.UNDO_NOTE
    noted = followup.record(world.release, published, followup.Step.UNDO_NOTE, UndoNoteResult("https://gh/r/1", True),
                            world.now, config)
    assert noted.status.release is not None and noted.status.release.undo_noted
    assert followup.plan(world.release, noted.status, world.now, config).step != followup.Step.UNDO_NOTE
    cond = noted.status.condition(ConditionType.UNDO_PUBLISHED)
    assert cond is not None and cond.status == "True"


def test_the_undo_line_names_when_who_why_and_what_runs_again() -> None:
    from hotfix_operator.publishing.facts import HotfixFacts
    from hotfix_operator.publishing.rendering import UNDO_MARKER, undo_line
    from hotfix_operator.publishing.undo import UndoFacts

    at = datetime.datetime(2026, 11, 23, 10, 30, tzinfo=datetime.UTC)
    facts = HotfixFacts(version="4.1.2-hotfix.1", commit_sha="a" * 40, incident_id="INC-1", ticket_url="https://t/1",
                        justification="x", severity="P0", risk_level="low", requested_by="alice",
                        repository="acme/checkout", promoted_at=at, postmortem_due_at=at)
    line = undo_line(facts, UndoFacts(by="bob", reason="errors\nup", at=at, previous_image=BLUE_IMAGE))
    assert line.startswith(UNDO_MARKER)
    assert "**Undone at 2026-11-23 10:30:00 UTC by bob because:** errors up." in line
    assert BLUE_IMAGE in line and "tag v4.1.2-hotfix.1 stays" in line
