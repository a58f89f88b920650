"""Approvals under the HotfixPolicy, as a specification: how many and from which groups, counted only
while the admission policy stands and each author still holds `approve`, at the times the operator saw
them; the wait timer; expiry; and the SLA."""

from __future__ import annotations

import datetime
from typing import Any

from hotfix_operator.api import Phase
from hotfix_operator.core.governance import AdmissionCheck, GovernanceRules
from hotfix_operator.core.lifecycle import reconcile
from hotfix_operator.core.model import Release, Status
from tests.core.world import World
from tests.support.releases import T0, release_object, release_spec

HIGH = GovernanceRules(required={"low": 1, "medium": 1, "high": 2}, required_groups={"high": ("hotfix-security",)},
                       wait_seconds={"high": 300})


def approval(who: str, decision: str = "Approve", group: str | None = None) -> dict[str, Any]:
    entry: dict[str, Any] = {"approver": who, "decision": decision, "groups": ["hotfix:approvers"]}
    if group:
        entry["group"] = group
        entry["groups"].append(group)
    return entry


def release(*approvals: dict[str, Any], risk: str = "high", **spec: Any) -> Release:
    return release_object(release_spec(riskLevel=risk, approval={"approvals": list(approvals)},
                                       rollout={"bakeSeconds": 1}, **spec))


def settle(world: World, status: Status | None = None, steps: int = 8, tick: float = 1.0) -> tuple[Status, list[Any]]:
    """Reconcile (acting, ticking) until the phase stops changing or it deploys; return status and events."""
    status = status or Status()
    events: list[Any] = []
    for _ in range(steps):
        decision = reconcile(world.release, status, world.observe())
        status, events = decision.status, events + list(decision.events)
        for action in decision.actions:
            world.apply(action)
        if status.phase == Phase.DEPLOYING:
            break
        world.tick(tick)
    return status, events


def test_high_risk_needs_two_approvals_one_from_the_security_group_then_waits_out_the_timer() -> None:
    world = World(release(approval("bob")), rules=HIGH)
    status, _ = settle(world)
    assert status.phase == Phase.AWAITING_APPROVAL and status.approvals == "1/2"
    assert status.waiting_for == "1 more approval(s) from someone other than alice; an approval from group " \
                                 "hotfix-security"
    world.release = release(approval("bob"), approval("dave"))
    status, _ = settle(world, status)
    assert status.approvals == "2/2" and status.waiting_for == "an approval from group hotfix-security", \
        "two approvals are not enough without the group"
    world.release = release(approval("bob"), approval("dave"), approval("carol", group="hotfix-security"))
    status, _ = settle(world, status, steps=3)
    carol_seen = next(o.observed_at for o in status.observed_approvals if o.approver == "carol")
    assert status.phase == Phase.AWAITING_APPROVAL and status.wait_timer_ends == carol_seen + datetime.timedelta(
        seconds=300)
    assert "wait until" in status.message and status.waiting_for.startswith("wait timer until")
    status, _ = settle(world, status, steps=400)
    assert status.phase == Phase.DEPLOYING
    assert world.now >= carol_seen + datetime.timedelta(seconds=300)


def test_approval_times_are_the_operators_first_sight_and_never_move() -> None:
    world = World(release(risk="medium"))
    status, _ = settle(world, steps=3)
    world.release = release(approval("bob"), risk="medium")
    world.tick(7)
    first_sight = world.now
    status, _ = settle(world, status, steps=1)
    world.tick(30)
    status, _ = settle(world, status, steps=1)
    seen = {o.approver: o.observed_at for o in status.observed_approvals}
    assert seen == {"bob": first_sight}


def test_an_approver_who_lost_the_right_is_not_counted() -> None:
    world = World(release(approval("bob"), risk="medium"), revoked=frozenset({"bob"}))
    status, _ = settle(world)
    assert status.phase == Phase.AWAITING_APPROVAL and status.approvals == "0/1"
    assert "bob no longer holds the approve verb here" in status.message
    world.revoked = frozenset()
    status, _ = settle(world, status)
    assert status.phase == Phase.DEPLOYING


FILED_UNDER = AdmissionCheck(ok=True, fingerprint="policy u1/1; binding u2/1")
MISSING = AdmissionCheck(ok=False, message="ValidatingAdmissionPolicyBinding hotfix-operator-approvals is missing",
                         fingerprint="policy u1/1; binding missing")


def test_without_the_admission_policy_nothing_is_counted_and_status_says_how_to_install_it() -> None:
    world = World(release(risk="medium"), admission=FILED_UNDER)
    status, _ = settle(world, steps=4)
    world.admission = MISSING
    world.release = release(approval("bob"), risk="medium")
    status, events = settle(world, status, steps=6)
    assert status.phase == Phase.AWAITING_APPROVAL and status.approved_by == ()
    cond = status.condition("Approved")
    assert cond is not None and cond.reason == "AdmissionPolicyMissing"
    assert "kubectl apply --server-side -f crds/admission.yaml" in status.message
    assert [e.reason for e in events].count("AdmissionPolicyMissing") == 1, "one Warning, not one per reconcile"


def test_approvals_are_never_trusted_once_the_admission_policy_changed_under_the_release() -> None:
    """Delete the binding, forge an approval, put a fresh binding back: the release is rejected, because
    an approval first seen after the gap may have been written during it."""
    world = World(release(risk="medium"), admission=FILED_UNDER)
    status, _ = settle(world, steps=4)
    assert status.admission_fingerprint == FILED_UNDER.fingerprint
    world.release = release(approval("bob"), risk="medium")  # written while nothing checked it
    world.admission = AdmissionCheck(ok=True, fingerprint="policy u1/1; binding u3/1")  # re-created
    status, _ = settle(world, status)
    assert status.phase == Phase.REJECTED and status.approved_by == ()
    cond = status.condition("Approved")
    assert cond is not None and cond.reason == "AdmissionPolicyChanged"
    assert "none of its approvals can be trusted" in status.message


def test_a_release_filed_while_the_policy_was_missing_is_never_approved() -> None:
    world = World(release(risk="medium"), admission=MISSING)
    status, _ = settle(world, steps=4)
    world.admission, world.release = FILED_UNDER, release(approval("bob"), risk="medium")
    status, _ = settle(world, status)
    assert status.phase == Phase.REJECTED, "its requestedBy was never proven either"


def test_a_reject_by_an_approver_ends_the_release() -> None:
    world = World(release(approval("bob"), approval("carol", "Reject"), risk="medium"))
    status, _ = settle(world)
    assert status.phase == Phase.REJECTED and status.message == "rejected by carol"


def test_a_release_not_deployed_before_its_expiry_ends_expired() -> None:
    world = World(release(risk="medium"), rules=GovernanceRules(expiry_seconds=120))
    status, events = settle(world, steps=20, tick=10)
    assert status.phase == Phase.EXPIRED and status.expires_at == T0 + datetime.timedelta(seconds=120)
    assert "file a new HotfixRelease" in status.message
    assert status.condition("Stalled") is not None and status.condition("Stalled").status == "True"  # type: ignore[union-attr]
    assert "Expired" in [e.reason for e in events]


def test_an_sla_breach_is_reported_once_and_by_default_the_hotfix_continues() -> None:
    world = World(release(risk="medium"), rules=GovernanceRules(sla_seconds=60))
    status, events = settle(world, steps=10, tick=10)
    assert status.sla_deadline == T0 + datetime.timedelta(seconds=60)
    breached = status.condition("SLABreached")
    assert breached is not None and breached.status == "True"
    assert [e.reason for e in events].count("SLABreached") == 1
    world.release = release(approval("bob"), risk="medium")
    status, _ = settle(world, status)
    assert status.phase == Phase.DEPLOYING


def test_the_policy_can_stop_a_late_hotfix_before_its_traffic_moves() -> None:
    rules = GovernanceRules(sla_seconds=20, on_sla_breach="StopBeforeSwitch")  # before the 30 s progress deadline
    world = World(release(approval("bob"), risk="medium"), rules=rules, green_ready_after=None)
    status, _ = settle(world)
    assert status.phase == Phase.DEPLOYING
    for _ in range(12):  # green never comes up; time runs past the SLA while it tries
        decision = reconcile(world.release, status, world.observe())
        status = decision.status
        for action in decision.actions:
            world.apply(action)
        world.tick(10)
    assert status.phase in (Phase.ROLLING_BACK, Phase.ROLLED_BACK)
    assert "the HotfixPolicy stops a late hotfix before the switch" in status.message
    assert world.selector.get("pod-template-hash") in (None, status.blue_green.blue_hash), "traffic never moved"
