"""The lifecycle with health checks: no traffic moves until the pre-promotion checks pass, blue stays
warm until the bake's checks pass, and a failed check rolls back naming the check."""

from __future__ import annotations

import datetime
from typing import Any

from hotfix_operator.api import POD_TEMPLATE_HASH, CheckPhase, CheckStage, ConditionType, Phase, Reason
from hotfix_operator.core.check_eval import Judgement
from hotfix_operator.core.check_model import Checks, CheckState
from hotfix_operator.core.checks import plan
from hotfix_operator.core.lifecycle import reconcile
from hotfix_operator.core.model import Abort, Release, Status
from hotfix_operator.core.observations import CheckPlan
from tests.core.world import World, drive, run_until
from tests.support.releases import release_object, release_spec


def with_checks(pre: tuple[dict[str, Any], ...] = (), post: tuple[dict[str, Any], ...] = (),
                **rollout: Any) -> Release:
    spec = release_spec(approvals=(("bob", "Approve"),), rollout={"bakeSeconds": 5, **rollout},
                        checks={"prePromotion": list(pre), "postPromotion": list(post)})
    return release_object(spec)


def world_for(release: Release) -> World:
    world = World(release)
    world.check_plan = CheckPlan(ok=True, states=plan(Checks(), release.spec.checks))
    return world


HEALTH = {"name": "health", "http": {"url": "http://{{ previewService }}/healthz"}, "count": 2, "intervalSeconds": 1}
ERRORS = {"name": "errors", "prometheus": {"address": "main", "query": "err", "max": 0.05}, "count": 3,
          "intervalSeconds": 1}


def answers(by_name: dict[str, list[str]]) -> Any:
    """Each check answers its listed outcomes in turn, then keeps the last one."""
    served: dict[str, int] = {}

    def answer(check: CheckState, now: datetime.datetime) -> Judgement:
        script = by_name[check.name]
        i = served.get(check.name, 0)
        served[check.name] = i + 1
        outcome = script[min(i, len(script) - 1)]
        return outcome, "500" if outcome == "fail" else "200", f"answered {outcome}"  # type: ignore[return-value]

    return answer


def green_selected(world: World, status: Status) -> bool:
    return world.selector.get(POD_TEMPLATE_HASH) not in (None, status.blue_green.blue_hash)


def test_passing_checks_run_before_the_switch_and_during_the_bake() -> None:
    world = world_for(with_checks((HEALTH,), (ERRORS,)))
    world.answer = answers({"health": ["pass"], "errors": ["pass"]})
    status, _ = drive(world, never_dark=True)
    assert status.phase == Phase.SUCCEEDED
    assert [(c.name, c.phase, c.measurements) for c in status.checks] == [
        ("health", CheckPhase.PASSED, 2), ("errors", CheckPhase.PASSED, 3)]
    pre, post = status.condition(ConditionType.PRE_PROMOTION_CHECKS), status.condition(
        ConditionType.POST_PROMOTION_CHECKS)
    assert pre is not None and pre.status == "True" and post is not None and post.status == "True"
    # every pre-promotion measurement came before traffic moved, every post one after it
    promoted = status.timestamps.promoted
    assert promoted is not None
    assert all(m.at <= promoted for m in world.measured if m.stage == CheckStage.PRE_PROMOTION)
    assert all(m.at >= promoted for m in world.measured if m.stage == CheckStage.POST_PROMOTION)


def test_pre_promotion_checks_wait_until_the_preview_service_lists_only_green() -> None:
    world = world_for(with_checks((HEALTH,)))
    world.answer = answers({"health": ["pass"]})
    status = run_until(world, Status(), lambda s: s.phase == Phase.PRE_PROMOTION)
    # the EndpointSlice controller has not caught up with the preview Service's move to green: its slices
    # still list blue's pods, so a check sent through it now could be answered by blue
    world.stall_endpoints()
    for _ in range(20):
        decision = reconcile(world.release, status, world.observe(status))
        status = decision.status
        for action in decision.actions:
            world.apply(action)
        world.tick()
    assert status.phase == Phase.PRE_PROMOTION and not world.measured
    assert not green_selected(world, status), "traffic left blue before its checks ran"
    assert "waiting for preview Service checkout-preview's EndpointSlices to list only green pods" in status.message
    assert "kube-controller-manager" in status.message, "20s on, the message says what to look at"
    world.stall_endpoints(False)
    status, _ = drive(world, status, never_dark=True)
    assert status.phase == Phase.SUCCEEDED and status.checks[0].measurements == 2
    through = [listed for stage, listed in world.measured_through if stage == CheckStage.PRE_PROMOTION]
    assert through == [frozenset({status.blue_green.green_hash})] * 2, "a check could be answered by blue"


def test_a_failing_pre_promotion_check_never_moves_traffic() -> None:
    world = world_for(with_checks((HEALTH,)))
    world.answer = answers({"health": ["fail"]})
    status, reasons = Status(), []
    for _ in range(60):
        decision = reconcile(world.release, status, world.observe(status))
        status = decision.status
        reasons += [e.reason for e in decision.events]
        for action in decision.actions:
            world.apply(action)
            assert not green_selected(world, status), "the active Service was pointed at green"
        if status.phase == Phase.ROLLED_BACK:
            break
        world.tick()
    assert status.phase == Phase.ROLLED_BACK and status.timestamps.promoted is None
    rolled = status.condition(ConditionType.ROLLED_BACK)
    assert rolled is not None and "pre-promotion check health (http) failed 1 of 1" in rolled.message
    assert "traffic never left blue" in rolled.message
    assert Reason.CHECK_FAILED in reasons


def test_a_check_failing_during_the_bake_rolls_back_to_warm_blue() -> None:
    world = world_for(with_checks(post=(ERRORS,)))
    world.answer = answers({"errors": ["pass", "fail"]})
    status, _ = drive(world, never_dark=True)
    assert status.phase == Phase.ROLLED_BACK and status.timestamps.promoted is not None
    # the Service has its own selector back, and only blue's pods serve
    assert world.selector == status.blue_green.original_selector
    assert world.published <= world.ready_ips()[status.blue_green.blue_hash or ""]
    check = status.checks[0]
    assert check.phase == CheckPhase.FAILED and check.last_value == "500"
    assert "post-promotion check errors (prometheus) failed 1 of 2" in status.message


def test_the_bake_waits_for_its_checks_before_folding() -> None:
    slow = {**ERRORS, "count": 8}
    world = world_for(with_checks(post=(slow,), bakeSeconds=2))
    world.answer = answers({"errors": ["pass"]})
    status = run_until(world, Status(), lambda s: s.phase == Phase.PROMOTED and s.timestamps.promoted is not None)
    promoted = status.timestamps.promoted
    assert promoted is not None
    status = run_until(world, status, lambda s: s.phase == Phase.FINALIZING)
    assert status.checks[0].phase == CheckPhase.PASSED
    assert status.timestamps.fold_started is not None and (status.timestamps.fold_started - promoted).seconds >= 7


def test_too_many_errors_in_a_row_roll_back_as_an_error() -> None:
    world = world_for(with_checks(({**HEALTH, "consecutiveErrorLimit": 2},)))
    world.answer = answers({"health": ["error"]})
    status, _ = drive(world, never_dark=True)
    assert status.phase == Phase.ROLLED_BACK and status.checks[0].phase == CheckPhase.ERROR
    assert "could not be evaluated 3 times in a row" in status.message


def test_abort_during_pre_promotion_rolls_back() -> None:
    release = with_checks(({**HEALTH, "count": 50},))
    world = world_for(release)
    status = run_until(world, Status(), lambda s: s.phase == Phase.PRE_PROMOTION)
    world.release = release.model_copy(update={"spec": release.spec.model_copy(
        update={"abort": Abort(by="bob", reason="wrong build")})})
    status, _ = drive(world, status, never_dark=True)
    assert status.phase == Phase.ROLLED_BACK and "aborted by bob" in status.message


def test_checks_resume_where_they_were_after_a_restart() -> None:
    world = world_for(with_checks(({**HEALTH, "count": 4},)))
    status = run_until(world, Status(), lambda s: s.phase == Phase.PRE_PROMOTION and s.checks[0].measurements == 2)
    # a restarted operator reads the status back from the API server: the count carries on from 2
    restored = Status.model_validate(status.to_json())
    assert restored.checks[0].measurements == 2 and restored.checks[0].spec.count == 4
    status, _ = drive(world, restored, never_dark=True)
    assert status.phase == Phase.SUCCEEDED
    assert sum(1 for m in world.measured if m.name == "health") == 4


def test_a_refused_check_plan_rejects_at_verifying() -> None:
    world = world_for(with_checks((HEALTH,)))
    world.check_plan = CheckPlan(ok=False, reason=Reason.CHECK_TARGET_NOT_ALLOWED, message="check health may not "
                                 "connect to 169.254.169.254")
    status, _ = drive(world)
    assert status.phase == Phase.REJECTED and status.blue_green.blue_hash is None
    valid = status.condition(ConditionType.INPUT_VALID)
    assert valid is not None and valid.reason == Reason.CHECK_TARGET_NOT_ALLOWED


def test_a_chained_phase_does_not_send_a_selector_write_twice() -> None:
    world = world_for(with_checks())
    status = run_until(world, Status(), lambda s: s.phase == Phase.DEPLOYING and world.green is not None)
    for _ in range(20):
        decision = reconcile(world.release, status, world.observe(status))
        writes = [(a.service, tuple(sorted(a.selector.items()))) for a in decision.actions
                  if type(a).__name__ == "SetServiceSelector"]
        assert len(writes) == len(set(writes)), f"the same selector write twice in one reconcile: {writes}"
        status = decision.status
        for action in decision.actions:
            world.apply(action)
        if status.phase == Phase.SUCCEEDED:
            break
        world.tick()
    assert status.phase == Phase.SUCCEEDED
