"""The controller's contract, with fake adapters and a fake clock: one reconcile reads the release,
runs the gate its phase needs, writes status before it acts, posts the Events, and reports whether
the release needs more reconciles. The cluster itself is the toy world of the core's tests."""

from __future__ import annotations

import copy
import datetime
from typing import Any, cast

import pydantic
import pytest

from hotfix_operator.adapters.kube import KubeAdapter
from hotfix_operator.adapters.policies import PolicyProblem, PolicyResolver, ResolvedPolicy
from hotfix_operator.api import POD_TEMPLATE_HASH, CheckStage, Phase
from hotfix_operator.controller import Controller, Outcome
from hotfix_operator.core.actions import Action, Event, SetServiceSelector
from hotfix_operator.core.check_model import Checks, CheckState, Measurement
from hotfix_operator.core.checks import plan
from hotfix_operator.core.governance import ApprovalCheck, GovernanceRules
from hotfix_operator.core.model import Release, Status
from hotfix_operator.core.observations import CheckPlan, ImageCheck, Observations, ProvenanceCheck
from hotfix_operator.followup_runner import FollowupRunner
from hotfix_operator.gates import Gates
from hotfix_operator.metrics import Metrics
from hotfix_operator.probes import Probes
from tests.core.world import World
from tests.support.releases import T0, release_object, release_spec


class FakeKube:
    """The KubeAdapter's surface, over a toy world; every call is logged in order."""

    def __init__(self, world: World) -> None:
        self.world = world
        self.status: dict[str, Any] = {}
        self.calls: list[str] = []
        self.events: list[Event] = []
        self.gone = False
        # as a watch cache: each cached observe returns what the previous one saw (one reconcile behind)
        self.cached = False
        self._behind: Observations | None = None
        # the EndpointSlice controller publishes as soon as a Service's selector is written (else: on World.tick)
        self.publish_on_write = False

    def get_release(self, namespace: str, name: str) -> dict[str, Any] | None:
        self.calls.append("get")
        if self.gone:
            return None
        release = self.world.release
        return {"metadata": {"name": release.name, "namespace": release.namespace, "uid": release.uid,
                             "generation": release.generation, "creationTimestamp": release.created.isoformat()},
                "spec": release.spec.model_dump(by_alias=True), "status": self.status}

    def observe(self, release: Release, status: Status, now: datetime.datetime, image: ImageCheck | None,
                provenance: ProvenanceCheck | None = None, *, rules: GovernanceRules | None = None,
                approvals: ApprovalCheck | None = None, live: bool = False) -> Observations:
        self.world.now = now
        observed = self.world.observe()
        if self.cached and not live:
            self.calls.append("observe:cache")
            # a watch's copy is whole and does not change under the reader (World's views share its dicts)
            observed, self._behind = self._behind or copy.deepcopy(observed), copy.deepcopy(observed)
        else:
            self.calls.append("observe:live" if self.cached else "observe")
        # as KubeAdapter.observe: the queue is looked up for the phases that decide on it
        queue = observed.queue_ahead if status.phase in (Phase.VERIFYING, Phase.QUEUED) else None
        return Observations(**{**observed.__dict__, "now": now, "image": image, "provenance": provenance,
                               "rules": rules, "approvals": approvals, "queue_ahead": queue})

    def write_status(self, release: Release, status: Status) -> None:
        self.calls.append("write")
        self.status = status.to_json()

    def execute(self, release: Release, action: Action) -> str:
        unpins = isinstance(action, SetServiceSelector) and action.service == "checkout" and \
            POD_TEMPLATE_HASH not in action.selector
        self.calls.append(f"act:{type(action).__name__}" + (":unpin" if unpins else ""))
        self.world.apply(action)
        if self.publish_on_write and isinstance(action, SetServiceSelector):
            self.world.sync_endpoints()
        return "done"

    def post_event(self, release: Release, event: Event, now: datetime.datetime) -> None:
        self.calls.append("event")
        self.events.append(event)


class FakeGates:
    def __init__(self) -> None:
        self.checked: list[str] = []
        self.provenance: ProvenanceCheck | None = None  # None: World's passing answer

    def check_image(self, release: Release, policies: Any) -> ImageCheck:
        self.checked.append("image")
        policies.for_namespace(release.namespace)
        return ImageCheck(ok=True)

    def check_provenance(self, release: Release, policies: Any) -> ProvenanceCheck:
        self.checked.append("provenance")
        policies.for_namespace(release.namespace)
        return self.provenance or World(release).provenance

    def rules(self, release: Release, policies: Any) -> GovernanceRules | None:
        policies.for_namespace(release.namespace)  # a second reader in the same reconcile: served from its cache
        return GovernanceRules()

    def check_approvals(self, release: Release) -> ApprovalCheck:
        self.checked.append("approvals")
        return World(release).approval_check()


class FakeProbes:
    """Plans no checks beyond what World plans and measures the ones the controller asks for as World answers."""

    def __init__(self, world: World) -> None:
        self.world = world
        self.planned = 0

    def plan(self, release: Release, status: Status, policies: Any) -> CheckPlan:
        self.planned += 1
        return self.world.check_plan

    def measure(self, release: Release, status: Status, due: tuple[CheckState, ...],
                now: datetime.datetime) -> tuple[Measurement, ...]:
        return self.world.answer_checks(due)


class CountingPolicies:
    def __init__(self, problem: PolicyProblem | None = None) -> None:
        self.reads = 0
        self.problem = problem

    def for_namespace(self, namespace: str) -> ResolvedPolicy:
        self.reads += 1
        if self.problem is not None:
            raise self.problem
        return cast(ResolvedPolicy, object())


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> datetime.datetime:
        self.now += datetime.timedelta(seconds=1)
        return self.now


def controller_for(release: Release, policies: CountingPolicies | None = None,
                   followup: FollowupRunner | None = None) -> tuple[Controller, FakeKube, FakeGates]:
    kube, gates = FakeKube(World(release)), FakeGates()
    controller = Controller(cast(KubeAdapter, kube), cast(PolicyResolver, policies or CountingPolicies()),
                            cast(Gates, gates), Metrics(), probes=cast(Probes, FakeProbes(kube.world)), clock=Clock(),
                            followup=followup)
    return controller, kube, gates


def approved() -> Release:
    return release_object(release_spec(approvals=(("bob", "Approve"),), rollout={"bakeSeconds": 2}))


def test_status_is_written_before_any_action_and_events_come_last() -> None:
    controller, kube, _ = controller_for(approved())
    for _ in range(6):  # the first reconciles that act: the pin to blue and green's creation
        kube.calls.clear()
        controller.reconcile_once("shop", "checkout-hotfix")
        kube.world.tick()
        acts = [i for i, call in enumerate(kube.calls) if call.startswith("act:")]
        if acts:
            break
    else:
        raise AssertionError("no reconcile acted")
    write, events = kube.calls.index("write"), [i for i, c in enumerate(kube.calls) if c == "event"]
    assert kube.calls[:2] == ["get", "observe"]
    assert write < min(acts), kube.calls
    assert not events or min(events) > max(acts), kube.calls


def test_only_the_switch_to_green_and_the_fold_go_out_ahead_of_the_status_writes_that_record_them() -> None:
    controller, kube, _ = controller_for(approved())
    before_write: list[list[str]] = []
    for _ in range(40):
        kube.calls.clear()
        controller.reconcile_once("shop", "checkout-hotfix")
        kube.world.tick()
        if "write" in kube.calls:
            before_write.append([c for c in kube.calls[:kube.calls.index("write")] if c.startswith("act:")])
        if Status.from_body({"status": kube.status}).phase == Phase.SUCCEEDED:
            break
    green = kube.world.green
    assert green is not None
    ahead = [acts for acts in before_write if acts]
    # each once, and nothing else ever
    assert ahead == [["act:SetServiceSelector"], ["act:SetContainerImage"]], before_write
    assert any(m == green.current_hash for m in kube.world.selector_moves)


def with_a_pre_promotion_check() -> tuple[Controller, FakeKube]:
    check = {"name": "health", "http": {"url": "http://{{ previewService }}/healthz"}, "count": 1,
             "intervalSeconds": 1}
    release = release_object(release_spec(approvals=(("bob", "Approve"),), rollout={"bakeSeconds": 2},
                                          checks={"prePromotion": [check]}))
    controller, kube, _ = controller_for(release)
    kube.world.check_plan = CheckPlan(ok=True, states=plan(Checks(), release.spec.checks))
    return controller, kube


def reconcile_until_green_is_available(controller: Controller, kube: FakeKube) -> None:
    """Reconcile (time passing between) until the reconcile that finds green available; its calls are kept."""
    for _ in range(40):
        kube.calls.clear()
        before = Status.from_body({"status": kube.status}).phase
        controller.reconcile_once("shop", "checkout-hotfix")
        kube.world.tick()
        if before == Phase.DEPLOYING and Status.from_body({"status": kube.status}).phase != Phase.DEPLOYING:
            return
    raise AssertionError("green never became available")


def test_green_available_is_one_status_write_with_the_preview_moved_and_the_first_check_measured_before_it(
) -> None:
    controller, kube = with_a_pre_promotion_check()
    kube.cached, kube.publish_on_write = True, True
    reconcile_until_green_is_available(controller, kube)
    # the preview Service on green, the watch cache read until its EndpointSlices list only green (the cache
    # is one read behind), the check measured (FakeProbes) through them, the switch, then the one write
    assert kube.calls.count("write") == 1, kube.calls
    acts_before = [c for c in kube.calls[:kube.calls.index("write")] if c.startswith("act:")]
    assert acts_before == ["act:SetServiceSelector", "act:SetServiceSelector"], kube.calls
    assert kube.calls.count("observe:cache") >= 3, kube.calls
    status = Status.from_body({"status": kube.status})
    assert status.phase == Phase.PROMOTED and [c.phase for c in status.checks] == ["Passed"]
    green = status.blue_green.green_hash
    assert kube.world.measured_through == [(CheckStage.PRE_PROMOTION, frozenset({green}))]


def test_a_check_through_the_preview_waits_for_its_endpoint_slices_and_status_says_so() -> None:
    controller, kube = with_a_pre_promotion_check()
    kube.cached = True  # and the EndpointSlices follow the selector only when World ticks
    reconcile_until_green_is_available(controller, kube)
    status = Status.from_body({"status": kube.status})
    assert status.phase == Phase.PRE_PROMOTION and not kube.world.measured, kube.calls
    assert "waiting for preview Service checkout-preview's EndpointSlices to list only green pods" in status.message
    assert kube.world.selector.get(POD_TEMPLATE_HASH) == status.blue_green.blue_hash, "traffic left blue"
    for _ in range(5):  # once they do, the check is measured through them and traffic moves
        controller.reconcile_once("shop", "checkout-hotfix")
        kube.world.tick()
    status = Status.from_body({"status": kube.status})
    assert status.phase in (Phase.PROMOTED, Phase.FINALIZING, Phase.SUCCEEDED), status.message
    assert kube.world.measured_through == [(CheckStage.PRE_PROMOTION, frozenset({status.blue_green.green_hash}))]


def test_a_refused_switch_still_records_the_decision_to_switch() -> None:
    controller, kube, _ = controller_for(approved())
    execute = kube.execute

    def refuse_the_switch(release: Release, action: Action) -> str:
        green = kube.world.green
        if isinstance(action, SetServiceSelector) and green is not None and \
                action.selector.get(POD_TEMPLATE_HASH) == green.current_hash and action.service == "checkout":
            raise RuntimeError("admission webhook denied the request")
        return execute(release, action)

    kube.execute = refuse_the_switch  # type: ignore[method-assign]
    for _ in range(40):
        try:
            controller.reconcile_once("shop", "checkout-hotfix")
        except RuntimeError:
            break
        kube.world.tick()
    else:
        raise AssertionError("the switch was never tried")
    status = Status.from_body({"status": kube.status})
    assert status.phase == Phase.PROMOTED and status.blue_green.active_hash == kube.world.green.current_hash  # type: ignore[union-attr]
    assert kube.world.selector.get(POD_TEMPLATE_HASH) == status.blue_green.blue_hash  # still on blue


def test_on_a_cache_one_reconcile_behind_nothing_is_removed_or_unpinned_before_a_live_look_and_traffic_never_drops(
) -> None:
    controller, kube, _ = controller_for(approved())
    kube.cached = True
    deletes = unpins = 0
    for _ in range(120):
        kube.calls.clear()
        outcome = controller.reconcile_once("shop", "checkout-hotfix")
        for i, call in enumerate(kube.calls):
            if call in ("act:DeleteDeployment", "act:SetServiceSelector:unpin"):
                deletes += call == "act:DeleteDeployment"
                unpins += call.endswith(":unpin")
                assert "observe:live" in kube.calls[:i], kube.calls
        assert kube.world.serving() > 0
        if outcome.phase == Phase.SUCCEEDED:
            break
        kube.world.tick()
    assert outcome.phase == Phase.SUCCEEDED and deletes >= 1 and unpins >= 1
    # a reconcile that neither removes nor unpins anything, on a cache that has caught up, looks at nothing live
    for _ in range(2):
        kube.calls.clear()
        controller.reconcile_once("shop", "checkout-hotfix")
    assert kube.calls.count("observe:live") == 0, kube.calls


def test_each_gate_runs_once_in_the_reconcile_that_reaches_its_phase_and_resolves_the_policy_once() -> None:
    policies = CountingPolicies()
    controller, kube, gates = controller_for(approved(), policies)
    seen = []
    for _ in range(3):  # the last: a cutover reconcile
        reads, checked, writes = policies.reads, len(gates.checked), kube.calls.count("write")
        outcome = controller.reconcile_once("shop", "checkout-hotfix")
        seen.append((outcome.phase, gates.checked[checked:], policies.reads - reads,
                     kube.calls.count("write") - writes))
    # every reconcile before the switch reads the policy's rules once; the gates share that read
    assert seen[:2] == [
        # filed: its SLA comes from the policy, and the admission policy it is filed under is noted
        (Phase.PENDING, ["approvals"], 1, 1),
        # each phase before production asks its gate as it is entered, and one status write records them all:
        # Pending (image) -> Verifying (provenance) -> AwaitingApproval (approvals, given) -> Deploying
        (Phase.DEPLOYING, ["image", "provenance", "approvals"], 1, 1),
    ]
    assert seen[2][:3] == (Phase.DEPLOYING, [], 0)  # the cutover's reconciles ask no gate


def test_a_chain_stops_at_the_phase_whose_gate_has_no_verdict_yet_and_asks_nothing_beyond_it() -> None:
    controller, kube, gates = controller_for(approved(), CountingPolicies())
    gates.provenance = ProvenanceCheck(ok=False, reason="RegistryUnavailable", message="registry down", transient=True)
    controller.reconcile_once("shop", "checkout-hotfix")
    outcome = controller.reconcile_once("shop", "checkout-hotfix")
    assert outcome.phase == Phase.VERIFYING and kube.calls.count("write") == 2
    assert gates.checked == ["approvals", "image", "provenance"]  # nobody's approval is looked at yet


def run_to_succeeded(controller: Controller, kube: FakeKube) -> Outcome:
    for _ in range(80):
        outcome = controller.reconcile_once("shop", "checkout-hotfix")
        if outcome.phase == Phase.SUCCEEDED:
            return outcome
        kube.world.tick()
    raise AssertionError(f"not Succeeded after 80 reconciles: {outcome.phase}")


def test_it_runs_to_succeeded_and_says_done_once_the_undo_window_closes() -> None:
    controller, kube, _ = controller_for(approved())
    outcome = run_to_succeeded(controller, kube)
    assert outcome.phase == Phase.SUCCEEDED and not outcome.done  # spec.undo may still come (core.undo)
    assert outcome.requeue_after is not None and outcome.requeue_after <= 24 * 3600
    assert Status.model_validate(kube.status).phase == Phase.SUCCEEDED
    controller.clock.now += datetime.timedelta(hours=24)  # type: ignore[attr-defined]
    outcome = controller.reconcile_once("shop", "checkout-hotfix")
    # the reconcile that closes the window takes one more look (an undo accepted just before it)
    assert outcome.phase == Phase.SUCCEEDED and not outcome.done and outcome.requeue_after is not None
    outcome = controller.reconcile_once("shop", "checkout-hotfix")
    assert outcome.phase == Phase.SUCCEEDED and outcome.done


def test_failed_is_not_done_because_abort_can_still_roll_back() -> None:
    release = release_object(release_spec(approvals=(("bob", "Approve"),),
                                          rollout={"progressDeadlineSeconds": 10, "autoRollback": False}))
    controller, kube, _ = controller_for(release)
    kube.world.green_ready_after = None
    for _ in range(60):
        outcome = controller.reconcile_once("shop", "checkout-hotfix")
        if outcome.phase == Phase.FAILED:
            break
        kube.world.tick()
    assert outcome.phase == Phase.FAILED and not outcome.done


def test_a_deleted_release_is_done() -> None:
    controller, kube, _ = controller_for(approved())
    kube.gone = True
    outcome = controller.reconcile_once("shop", "checkout-hotfix")
    assert outcome.done and outcome.phase is None and kube.calls == ["get"]


def test_follow_ups_wait_for_a_readable_policy_and_keep_the_release_in_view() -> None:
    policies = CountingPolicies(PolicyProblem("PolicyUnavailable", "API down", transient=True))
    runner = FollowupRunner()
    controller, kube, _ = controller_for(approved(), policies, followup=runner)
    kube.status = Status(phase=Phase.SUCCEEDED).to_json()
    outcome = controller.reconcile_once("shop", "checkout-hotfix")
    assert outcome.phase == Phase.SUCCEEDED and not outcome.done
    assert outcome.requeue_after is not None and outcome.requeue_after <= runner.settings.check_seconds
    assert policies.reads == 1


def _at(version: str, phase: str) -> dict[str, Any]:
    return {"metadata": {"name": "checkout-hotfix", "namespace": "shop", "resourceVersion": version},
            "status": {"phase": phase}}


def test_the_newest_copy_of_the_release_is_used_the_watchs_or_the_last_status_writes() -> None:
    controller, kube, _ = controller_for(approved())
    controller._written[("shop", "checkout-hotfix")] = _at("120", "Deploying")
    # the watch has not delivered this operator's last write yet: the write's copy is newer
    assert controller.release_body("shop", "checkout-hotfix", _at("119", "AwaitingApproval")) == \
        _at("120", "Deploying")
    # someone wrote after it (an abort, say): the watch's copy is newer, and the write's is not kept any longer
    assert controller.release_body("shop", "checkout-hotfix", _at("121", "Deploying")) == _at("121", "Deploying")
    assert ("shop", "checkout-hotfix") not in controller._written
    assert controller.release_body("shop", "checkout-hotfix", _at("121", "Deploying")) == _at("121", "Deploying")
    assert "get" not in kube.calls


def test_the_release_is_read_live_when_no_copy_can_be_trusted() -> None:
    controller, kube, _ = controller_for(approved())
    controller._written[("shop", "checkout-hotfix")] = _at("120", "Deploying")
    controller.release_body("shop", "checkout-hotfix", _at("0120", "AwaitingApproval"))  # not a canonical integer
    controller.release_body("shop", "checkout-hotfix", None)  # no watch copy: the deletion finalizer's path
    assert kube.calls == ["get", "get"]


def test_a_status_write_is_remembered_without_its_managed_fields_until_the_release_is_done() -> None:
    controller, kube, _ = controller_for(approved())

    def stored(release: Release, status: Status) -> dict[str, Any]:
        body = _at("7", str(status.phase))
        body["metadata"]["managedFields"] = [{"manager": "hotfix-operator", "fieldsV1": {"f:status": {}}}]
        return body

    kube.write_status = stored  # type: ignore[method-assign]
    controller.reconcile_once("shop", "checkout-hotfix")
    assert controller._written[("shop", "checkout-hotfix")]["metadata"] == {
        "name": "checkout-hotfix", "namespace": "shop", "resourceVersion": "7"}
    assert controller.is_own_write("shop", "checkout-hotfix", _at("7", "Pending"))
    kube.gone = True
    assert controller.reconcile_once("shop", "checkout-hotfix").done
    assert ("shop", "checkout-hotfix") not in controller._written
    assert not controller.is_own_write("shop", "checkout-hotfix", _at("7", "Pending"))


def test_a_version_of_the_release_is_parsed_once_however_many_reconciles_read_it() -> None:
    controller, kube, _ = controller_for(approved())
    body = kube.get_release("shop", "checkout-hotfix")
    assert body is not None
    body["metadata"]["resourceVersion"] = "5"
    release, status = controller.parse("shop", "checkout-hotfix", body)
    again = controller.parse("shop", "checkout-hotfix", copy.deepcopy(body))
    assert again[0] is release and again[1] is status
    with pytest.raises(pydantic.ValidationError):  # what makes sharing one parse safe
        status.phase = Phase.FAILED  # type: ignore[misc]
    newer = copy.deepcopy(body)
    newer["metadata"]["resourceVersion"], newer["status"] = "6", {"phase": "Deploying"}
    assert controller.parse("shop", "checkout-hotfix", newer)[1].phase is Phase.DEPLOYING
    recreated = {**copy.deepcopy(newer), "status": {"phase": "Pending"}}
    recreated["metadata"]["uid"] = "another-uid"  # same name and version number, another object
    assert controller.parse("shop", "checkout-hotfix", recreated)[1].phase is Phase.PENDING
    unversioned = {**copy.deepcopy(body), "metadata": {**body["metadata"], "resourceVersion": None}}
    assert controller.parse("shop", "checkout-hotfix", unversioned)[1] is not \
        controller.parse("shop", "checkout-hotfix", unversioned)[1]


def test_a_release_is_finished_only_on_a_live_read() -> None:
    controller, kube, _ = controller_for(approved())
    run_to_succeeded(controller, kube)
    controller.clock.now += datetime.timedelta(hours=24)  # type: ignore[attr-defined]
    gets = []
    for _ in range(3):
        seen = kube.get_release("shop", "checkout-hotfix")  # the watch's copy, as fresh as it gets
        kube.calls.clear()
        outcome = controller.reconcile_once("shop", "checkout-hotfix", seen=seen)
        gets.append(kube.calls.count("get"))
        if outcome.done:
            break
    assert outcome.done
    assert gets[-1] == 1 and sum(gets[:-1]) == 0, "only the reconcile that finishes it reads the release live"


def test_the_watch_event_of_its_own_last_write_is_known_as_such_and_no_other() -> None:
    controller, _, _ = controller_for(approved())
    assert not controller.is_own_write("shop", "checkout-hotfix", _at("120", "Deploying")), "nothing written yet"
    controller._written_version[("shop", "checkout-hotfix")] = "120"
    assert controller.is_own_write("shop", "checkout-hotfix", _at("120", "Deploying"))
    # a later change by anyone (an approval, an abort) wakes the release
    assert not controller.is_own_write("shop", "checkout-hotfix", _at("121", "Deploying"))
    assert not controller.is_own_write("shop", "checkout-hotfix", {"metadata": {}})


def test_a_progress_line_alone_is_written_at_most_every_two_seconds() -> None:
    from hotfix_operator.controller import PROGRESS_WRITE_SECONDS
    from hotfix_operator.core.step import Decision

    controller, kube, _ = controller_for(approved())
    release = approved()
    status = Status(phase=Phase.DEPLOYING, message="waiting for green (0/3 replicas available)")
    first = controller.carry_out(release, Status(), Decision(status))
    assert kube.calls.count("write") == 1 and first.status == status
    progressed = Decision(status.model_copy(update={"message": "waiting for green (1/3 replicas available)"}))
    held = controller.carry_out(release, status, progressed)
    assert kube.calls.count("write") == 1, "held back: only the message changed, a moment after a write"
    assert held.status == status and held.requeue_after is not None and held.requeue_after <= PROGRESS_WRITE_SECONDS
    moved = Decision(status.model_copy(update={"phase": Phase.PRE_PROMOTION}))
    controller.carry_out(release, status, moved)
    assert kube.calls.count("write") == 2, "a change of what the status records is written at once"
    controller._written_at[("shop", "checkout-hotfix")] -= PROGRESS_WRITE_SECONDS
    controller.carry_out(release, moved.status, Decision(moved.status.model_copy(update={"message": "x"})))
    assert kube.calls.count("write") == 3, "and a progress line once PROGRESS_WRITE_SECONDS have passed"
