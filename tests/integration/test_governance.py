"""The operator trusts only what admission proved, on the real control plane, acting as the real users:
it counts exactly the accepted approvals, at the times it saw them; without the admission policy nothing
deploys; the HotfixPolicy's rules for risk, groups, the wait timer, expiry and the SLA hold; and abort
works in every phase, Finalizing included."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from localcluster.cluster import LocalCluster
from tests.integration.conftest import POLICY_LABEL, FileHotfix, OperatorProcess, abort, approve
from tests.kube import Kube, wait_for
from tests.support.cutover import APP, assert_original_shape, condition

NAME = "checkout-hotfix"
ADMISSION = Path(__file__).resolve().parents[2] / "crds" / "admission.yaml"
PolicyFor = Callable[..., str]


@pytest.fixture
def policy_for(kube: Kube, test_policy: str) -> Iterator[PolicyFor]:
    """Govern one namespace by its own HotfixPolicy: the session policy's provenance plus `spec` sections."""
    made: list[str] = []

    def make(namespace: str, **sections: Any) -> str:
        base = kube.custom.get_cluster_custom_object("hotfix.dev", "v1alpha1", "hotfixpolicies", test_policy)
        name = f"gov-{uuid.uuid4().hex[:8]}"
        policy = {"apiVersion": "hotfix.dev/v1alpha1", "kind": "HotfixPolicy", "metadata": {"name": name},
                  "spec": {**base["spec"], "namespaceSelector": {"matchLabels": {POLICY_LABEL: name}}, **sections}}
        kube.apply(policy, "default")
        kube.kubectl("label", "namespace", namespace, f"{POLICY_LABEL}={name}", "--overwrite")
        made.append(name)
        return name

    yield make
    for name in made:
        kube.kubectl("delete", "hotfixpolicy", name, "--ignore-not-found")


def test_the_operator_counts_the_accepted_approval_at_the_time_it_saw_it(
    kube: Kube, quickstart: str, file_hotfix: FileHotfix, running_operator: OperatorProcess
) -> None:
    ns = quickstart
    file_hotfix(ns)
    kube.wait_phase(ns, NAME, "AwaitingApproval")
    approve(kube, ns, NAME, "bob")
    done = kube.wait_phase(ns, NAME, "Succeeded", "RolledBack", "Failed", "Rejected", timeout=90)
    status = done["status"]
    assert status["phase"] == "Succeeded", status["message"]
    assert status["approvedBy"] == ["bob"] and status["approvals"] == "1/1"
    [seen] = status["observedApprovals"]
    assert seen["approver"] == "bob" and seen["allowed"] is True
    assert status["timestamps"]["created"] <= seen["observedAt"] <= status["timestamps"]["approved"]
    assert "at" not in done["spec"]["approval"]["approvals"][0], "no client-supplied time exists"


def test_without_the_admission_policy_nothing_deploys_and_approvals_from_the_gap_are_never_trusted(
    kube: Kube, cluster: LocalCluster, quickstart: str, file_hotfix: FileHotfix, running_operator: OperatorProcess
) -> None:
    ns = quickstart
    file_hotfix(ns)
    kube.wait_phase(ns, NAME, "AwaitingApproval")
    kube.kubectl("delete", "validatingadmissionpolicybinding", "hotfix-operator-approvals")
    try:
        held = wait_for("the operator to stop counting", lambda: obj if condition(
            obj := kube.release(ns, NAME), "Approved").get("reason") == "AdmissionPolicyMissing" else None, timeout=60)
        assert "kubectl apply --server-side -f crds/admission.yaml" in held["status"]["message"]
        assert "ValidatingAdmissionPolicyBinding hotfix-operator-approvals is missing" in held["status"]["message"]
        # with nothing enforcing, the requester can write an approval in bob's name: the API server takes it
        forged = json.dumps([{"op": "add", "path": "/spec/approval/approvals/-", "value": {
            "approver": "bob", "decision": "Approve", "groups": ["hotfix:approvers", "system:authenticated"]}}])
        # (the API server drops the binding from its admission cache a moment after the delete)
        wait_for("the API server to stop enforcing and take it", lambda: "patched" in kube.kubectl(
            "patch", "hfr", NAME, "-n", ns, "--type=json", "-p", forged, user="alice", check=False), timeout=30)
        warnings = kube.core.list_namespaced_event(
            ns, field_selector="involvedObject.kind=HotfixRelease,reason=AdmissionPolicyMissing").items
        assert len(warnings) == 1
        assert "hotfix_admission_policy_installed 0.0" in _metrics(running_operator)
        assert kube.release(ns, NAME)["status"]["phase"] == "AwaitingApproval"
    finally:
        cluster.kubectl("apply", "--server-side", "-f", str(ADMISSION))
    done = kube.wait_phase(ns, NAME, "Rejected", "Deploying", "Promoted", "Succeeded", timeout=60)
    assert done["status"]["phase"] == "Rejected", "the forged approval must never count"
    assert condition(done, "Approved")["reason"] == "AdmissionPolicyChanged"
    assert done["status"].get("approvedBy", []) == []
    assert [d.metadata.name for d in kube.apps.list_namespaced_deployment(ns).items] == ["checkout"]


def _metrics(operator: OperatorProcess) -> str:
    import httpx

    return httpx.get(f"http://127.0.0.1:{operator.metrics_port}/metrics", timeout=5).text


def test_high_risk_needs_two_approvals_including_the_security_group_and_waits_out_the_timer(
    kube: Kube, quickstart: str, file_hotfix: FileHotfix, running_operator: OperatorProcess, policy_for: PolicyFor
) -> None:
    ns = quickstart
    policy_for(ns, approvals={"required": {"high": 2}, "requiredGroups": {"high": ["hotfix-security"]},
                              "waitSeconds": {"high": 4}})
    file_hotfix(ns, riskLevel="high")
    kube.wait_phase(ns, NAME, "AwaitingApproval")
    approve(kube, ns, NAME, "bob")
    approve(kube, ns, NAME, "dave")
    waiting = wait_for("two approvals without the group", lambda: obj if (
        obj := kube.release(ns, NAME))["status"].get("approvals") == "2/2" else None)
    assert waiting["status"]["waitingFor"] == "an approval from group hotfix-security"
    assert waiting["status"]["phase"] == "AwaitingApproval"
    approve(kube, ns, NAME, "carol", group="hotfix-security")
    timed = wait_for("the wait timer", lambda: obj if (obj := kube.release(ns, NAME))["status"].get(
        "waitTimerEnds") else None)
    assert timed["status"]["phase"] == "AwaitingApproval" and "wait timer until" in timed["status"]["waitingFor"]
    deploying = kube.wait_phase(ns, NAME, "Deploying", "Promoted", "Finalizing", "Succeeded", timeout=60)
    assert deploying["status"]["timestamps"]["approved"] >= timed["status"]["waitTimerEnds"]
    done = kube.wait_phase(ns, NAME, "Succeeded", "RolledBack", "Failed", timeout=90)
    record_approvers = sorted(done["status"]["approvedBy"])
    assert record_approvers == ["bob", "carol", "dave"]


def test_a_release_not_deployed_in_time_expires(
    kube: Kube, quickstart: str, file_hotfix: FileHotfix, running_operator: OperatorProcess, policy_for: PolicyFor
) -> None:
    ns = quickstart
    policy_for(ns, approvals={"expirySeconds": 10})
    file_hotfix(ns)
    done = kube.wait_phase(ns, NAME, "Expired", timeout=60)
    assert "file a new HotfixRelease" in done["status"]["message"]
    assert condition(done, "Stalled")["status"] == "True"
    assert [d.metadata.name for d in kube.apps.list_namespaced_deployment(ns).items] == ["checkout"]


def test_an_sla_breach_sets_a_condition_and_a_warning_and_the_policy_may_stop_the_switch(
    kube: Kube, quickstart: str, file_hotfix: FileHotfix, running_operator: OperatorProcess, policy_for: PolicyFor
) -> None:
    ns = quickstart
    policy_for(ns, sla={"targetSeconds": 10, "onBreach": "StopBeforeSwitch"})
    file_hotfix(ns)
    breached = wait_for("the SLA breach", lambda: obj if condition(
        obj := kube.release(ns, NAME), "SLABreached").get("status") == "True" else None, timeout=60)
    assert breached["status"]["phase"] == "Rejected", "stopped before anything moved"
    assert "the HotfixPolicy stops a late hotfix before the switch" in breached["status"]["message"]
    events = kube.core.list_namespaced_event(
        ns, field_selector="involvedObject.kind=HotfixRelease,reason=SLABreached,type=Warning").items
    assert events
    assert kube.selector(ns, "checkout") == APP


def test_abort_while_folding_puts_blue_back(
    kube: Kube, quickstart: str, file_hotfix: FileHotfix, running_operator: OperatorProcess
) -> None:
    ns = quickstart
    blue_image = kube.apps.read_namespaced_deployment("checkout", ns).spec.template.spec.containers[0].image
    manifest = file_hotfix(ns, rollout={"progressDeadlineSeconds": 60, "bakeSeconds": 1,
                                        "scaleDownDelaySeconds": 30})
    kube.wait_phase(ns, NAME, "AwaitingApproval")
    approve(kube, ns, NAME, "bob")
    wait_for("the fold to switch traffic to the Deployment", lambda: (
        kube.release(ns, NAME)["status"]["timestamps"].get("folded")), timeout=60)
    image = manifest["spec"]["artifact"]["image"]
    assert kube.apps.read_namespaced_deployment("checkout", ns).spec.template.spec.containers[0].image == image
    abort(kube, ns, NAME, by="alice", reason="checkout latency doubled after the fold")
    done = kube.wait_phase(ns, NAME, "RolledBack", "Succeeded", "Failed", timeout=120)
    status = done["status"]
    assert status["phase"] == "RolledBack", status["message"]
    assert "aborted by alice: checkout latency doubled after the fold" in status["message"]
    assert any(a["action"] == "RollingBack" and a["actor"] == "alice" for a in status["audit"])
    assert_original_shape(kube, ns, blue_image)
    blue_hash = status["blueGreen"]["blueHash"]
    assert kube.endpoint_ips(ns, "checkout") == kube.pod_ips(ns, {**APP, "pod-template-hash": blue_hash}), \
        "blue's own ReplicaSet serves again"
    print(json.dumps([a["detail"] for a in status["audit"] if a["action"] == "TrafficSwitched"], indent=1))
