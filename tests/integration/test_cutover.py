"""A hotfix end to end on the real control plane: the operator as a real process, the quickstart app,
a real image in a TLS registry. Traffic is judged by the EndpointSlices the controller-manager computes."""

from __future__ import annotations

import json
import time
from typing import Any

import httpx
import pytest

from hotfix_operator.api import API_GROUP, API_VERSION, FINALIZER, PLURAL
from hotfix_operator.api import LABEL_SETTLED as SETTLED
from tests.integration.conftest import FileHotfix, OperatorProcess, abort, approval, approve
from tests.kube import Kube, wait_for
from tests.support.cutover import APP, assert_original_shape, condition, pods_by_hash


def test_an_approved_hotfix_goes_from_pending_to_succeeded(
    kube: Kube, quickstart: str, file_hotfix: FileHotfix, running_operator: OperatorProcess
) -> None:
    ns = quickstart
    manifest = file_hotfix(ns)
    waiting = kube.wait_phase(ns, "checkout-hotfix", "AwaitingApproval")
    assert waiting["status"]["incidentId"].startswith("INC-")
    assert waiting["status"]["approvals"] == "0/1"
    assert condition(waiting, "InputValid")["status"] == "True"
    assert condition(waiting, "Ready")["status"] == "False"
    assert condition(waiting, "Reconciling")["status"] == "True"
    assert "patch hfr checkout-hotfix" in waiting["status"]["message"]  # says how to approve

    approve(kube, ns, "checkout-hotfix")
    done = kube.wait_phase(ns, "checkout-hotfix", "Succeeded", "RolledBack", "Failed", "Rejected")
    status = done["status"]
    assert status["phase"] == "Succeeded", status["message"]
    assert [a["action"] for a in status["audit"]] == [
        "Pending",
        "Verifying",
        "ProvenanceVerified",
        "AwaitingApproval",
        "Deploying",
        "PinnedBlue",
        "Promoted",
        "TrafficSwitched",  # written when the EndpointSlices list only green pods, not when decided
        "Finalizing",
        "TrafficSwitched",
        "Succeeded",
    ]
    assert status["observedGeneration"] == done["metadata"]["generation"]
    assert condition(done, "Ready") | {"lastTransitionTime": None} == condition(done, "Ready") | {
        "status": "True",
        "reason": "Succeeded",
        "lastTransitionTime": None,
    }
    assert condition(done, "Stalled")["status"] == "False"
    ts = status["timestamps"]
    assert ts["created"] <= ts["approved"] <= ts["promoted"] <= ts["folded"] <= ts["completed"]
    assert_original_shape(kube, ns, manifest["spec"]["artifact"]["image"])
    events = kube.core.list_namespaced_event(ns, field_selector="involvedObject.kind=HotfixRelease").items
    reasons = [e.reason for e in sorted(events, key=lambda e: e.metadata.creation_timestamp)]
    assert {"Accepted", "Approved", "TrafficSwitched", "Succeeded"} <= set(reasons)
    assert any(e.reason == "Approved" and e.message.startswith("bob:") for e in events)  # names the actor
    metrics = httpx.get(f"http://127.0.0.1:{running_operator.metrics_port}/metrics", timeout=5).text
    assert f'hotfix_releases_total{{namespace="{ns}",outcome="Succeeded"}} 1.0' in metrics
    assert "hotfix_approval_to_production_seconds_count" in metrics


def test_after_the_switch_the_active_service_endpoints_hold_only_green_pods(
    kube: Kube, quickstart: str, file_hotfix: FileHotfix, running_operator: OperatorProcess
) -> None:
    ns = quickstart
    blue_ips = kube.pod_ips(ns, APP)
    file_hotfix(ns, rollout={"progressDeadlineSeconds": 30, "bakeSeconds": 20, "scaleDownDelaySeconds": 1})
    kube.wait_phase(ns, "checkout-hotfix", "AwaitingApproval")
    approve(kube, ns, "checkout-hotfix")
    promoted = wait_for(
        "TrafficSwitched=True during the bake",
        lambda: (
            obj
            if (obj := kube.release(ns, "checkout-hotfix"))["status"]["phase"] == "Promoted"
            and condition(obj, "TrafficSwitched").get("status") == "True"
            else None
        ),
        timeout=60,
    )
    green_hash = promoted["status"]["blueGreen"]["greenHash"]
    green_ips = pods_by_hash(kube, ns)[green_hash]
    assert len(green_ips) == 3
    assert kube.endpoint_ips(ns, "checkout") == green_ips
    assert not green_ips & blue_ips
    assert kube.endpoint_ips(ns, "checkout-preview") == green_ips
    assert (
        kube.pod_ips(ns, {"app": "checkout", "pod-template-hash": promoted["status"]["blueGreen"]["blueHash"]})
        == blue_ips
    ), "blue stays running during the bake, for an instant rollback"


def test_a_green_that_never_becomes_available_rolls_back_to_blue(
    kube: Kube, quickstart: str, file_hotfix: FileHotfix, running_operator: OperatorProcess
) -> None:
    ns = quickstart
    blue_ips = kube.pod_ips(ns, APP)
    blue_image = kube.apps.read_namespaced_deployment("checkout", ns).spec.template.spec.containers[0].image
    # The namespace's quota admits blue's 3 pods and no more: green's pods are refused by admission.
    kube.apply(
        {"apiVersion": "v1", "kind": "ResourceQuota", "metadata": {"name": "pods"}, "spec": {"hard": {"pods": "3"}}}, ns
    )
    file_hotfix(ns, rollout={"progressDeadlineSeconds": 10, "bakeSeconds": 2, "scaleDownDelaySeconds": 1})
    kube.wait_phase(ns, "checkout-hotfix", "AwaitingApproval")
    approve(kube, ns, "checkout-hotfix")
    kube.wait_phase(ns, "checkout-hotfix", "Deploying")
    assert kube.endpoint_ips(ns, "checkout") == blue_ips
    done = kube.wait_phase(ns, "checkout-hotfix", "RolledBack", "Succeeded", "Failed", timeout=60)
    status = done["status"]
    assert status["phase"] == "RolledBack"
    assert "was not available in time" in status["message"]
    assert next(a for a in status["audit"] if a["action"] == "RollingBack")["detail"].startswith(
        "green checkout-hotfix-"), "the audit says which green did not come up"
    assert "exceeded quota" in status["message"], "the message names why green did not come up"
    rolled_back = condition(done, "RolledBack")
    assert rolled_back["status"] == "True"
    assert condition(done, "Stalled")["status"] == "True"
    assert condition(done, "Ready")["status"] == "False"
    assert_original_shape(kube, ns, blue_image)
    assert kube.endpoint_ips(ns, "checkout") == blue_ips, "the same blue pods serve; nothing restarted"
    warnings = [
        e.reason
        for e in kube.core.list_namespaced_event(
            ns, field_selector="involvedObject.kind=HotfixRelease,type=Warning"
        ).items
    ]
    assert "ProgressDeadlineExceeded" in warnings and "RolledBack" in warnings


@pytest.mark.parametrize("kill_in", ["Deploying", "Promoted", "Finalizing"])
def test_killing_the_operator_mid_cutover_still_ends_correctly(
    kube: Kube, quickstart: str, file_hotfix: FileHotfix, running_operator: OperatorProcess, kill_in: str
) -> None:
    ns = quickstart
    manifest = file_hotfix(ns, rollout={"progressDeadlineSeconds": 60, "bakeSeconds": 4, "scaleDownDelaySeconds": 4})
    kube.wait_phase(ns, "checkout-hotfix", "AwaitingApproval")
    approve(kube, ns, "checkout-hotfix")
    # the cutover moves fast (green comes up in about a second here): kill in that phase or, if the poll
    # missed it, in whichever later one holds production
    holding = ["Deploying", "Promoted", "Finalizing"]
    kube.wait_phase(ns, "checkout-hotfix", *holding[holding.index(kill_in):], timeout=60)
    running_operator.kill()
    frozen = kube.release(ns, "checkout-hotfix")["status"]["phase"]
    assert frozen in ("Deploying", "Promoted", "Finalizing")
    running_operator.start()
    done = kube.wait_phase(ns, "checkout-hotfix", "Succeeded", "RolledBack", "Failed", timeout=90)
    assert done["status"]["phase"] == "Succeeded", done["status"]["message"]
    assert_original_shape(kube, ns, manifest["spec"]["artifact"]["image"])
    switches = [a for a in done["status"]["audit"] if a["action"] == "TrafficSwitched"]
    assert len(switches) == 2, "one switch to green, one to the folded Deployment; none repeated"


def test_abort_during_the_bake_moves_traffic_back_to_blue(
    kube: Kube, quickstart: str, file_hotfix: FileHotfix, running_operator: OperatorProcess
) -> None:
    ns = quickstart
    blue_ips = kube.pod_ips(ns, APP)
    blue_image = kube.apps.read_namespaced_deployment("checkout", ns).spec.template.spec.containers[0].image
    file_hotfix(ns, rollout={"progressDeadlineSeconds": 30, "bakeSeconds": 60, "scaleDownDelaySeconds": 1})
    kube.wait_phase(ns, "checkout-hotfix", "AwaitingApproval")
    approve(kube, ns, "checkout-hotfix")
    kube.wait_phase(ns, "checkout-hotfix", "Promoted")
    abort(kube, ns, "checkout-hotfix", by="bob", reason="error rate up on green")
    done = kube.wait_phase(ns, "checkout-hotfix", "RolledBack", "Succeeded", "Failed")
    assert done["status"]["phase"] == "RolledBack"
    assert "aborted by bob: error rate up on green" in condition(done, "RolledBack")["message"]
    assert_original_shape(kube, ns, blue_image)
    assert kube.endpoint_ips(ns, "checkout") == blue_ips


def test_a_reject_decision_stops_the_hotfix_before_production_changes(
    kube: Kube, quickstart: str, file_hotfix: FileHotfix, running_operator: OperatorProcess
) -> None:
    ns = quickstart
    file_hotfix(ns)
    kube.wait_phase(ns, "checkout-hotfix", "AwaitingApproval")
    approve(kube, ns, "checkout-hotfix", approver="carol", decision="Reject")
    done = kube.wait_phase(ns, "checkout-hotfix", "Rejected")
    assert done["status"]["message"] == "rejected by carol: reviewed the diff"
    assert condition(done, "Approved")["reason"] == "ApprovalRejected"
    assert [d.metadata.name for d in kube.apps.list_namespaced_deployment(ns).items] == ["checkout"]


def test_a_finished_hotfix_is_labelled_settled_and_a_restart_leaves_it_untouched(
    kube: Kube, quickstart: str, file_hotfix: FileHotfix, running_operator: OperatorProcess
) -> None:
    ns = quickstart
    file_hotfix(ns)
    kube.wait_phase(ns, "checkout-hotfix", "AwaitingApproval")
    approve(kube, ns, "checkout-hotfix", approver="carol", decision="Reject")
    kube.wait_phase(ns, "checkout-hotfix", "Rejected")
    settled = wait_for("the rejected release to be labelled settled", lambda: (
        obj if (obj := kube.release(ns, "checkout-hotfix"))["metadata"].get("labels", {}).get(SETTLED) == "true"
        else None), timeout=30)
    running_operator.kill()
    running_operator.start()
    wait_for("the restarted operator to read from its watches",
             lambda: "from the watches" in running_operator.log_tail(400), timeout=60)
    time.sleep(3)
    after = kube.release(ns, "checkout-hotfix")
    assert after["metadata"]["resourceVersion"] == settled["metadata"]["resourceVersion"], \
        "a settled release is not written to after a restart"
    assert after["status"] == settled["status"]
    # the operator no longer watches it, so nothing of its own may hold its deletion
    assert FINALIZER not in (after["metadata"].get("finalizers") or [])
    kube.custom.delete_namespaced_custom_object(API_GROUP, API_VERSION, ns, PLURAL, "checkout-hotfix")
    wait_for("the settled release to be gone", lambda: not kube.custom.list_namespaced_custom_object(
        API_GROUP, API_VERSION, ns, PLURAL)["items"], timeout=15)


def test_the_requester_cannot_approve_their_own_hotfix(
    kube: Kube, quickstart: str, file_hotfix: FileHotfix, running_operator: OperatorProcess
) -> None:
    ns = quickstart
    file_hotfix(ns)
    kube.wait_phase(ns, "checkout-hotfix", "AwaitingApproval")
    own = json.dumps([{"op": "add", "path": "/spec/approval/approvals/-", "value": approval(kube, "alice")}])
    output = kube.kubectl("patch", "hfr", "checkout-hotfix", "-n", ns, "--type=json", "-p", own, user="alice",
                          check=False)
    # the API server refuses it (crds/admission.yaml; every refusal is in test_admission.py) ...
    assert "Error from server (Forbidden)" in output, output
    assert "alice requested this hotfix and cannot approve or reject it" in output, output
    # ... so the release keeps waiting for someone else
    obj = kube.release(ns, "checkout-hotfix")
    assert obj["spec"]["approval"]["approvals"] == []
    assert obj["status"]["phase"] == "AwaitingApproval"
    assert obj["status"]["approvals"] == "0/1"


def test_a_second_hotfix_for_the_same_target_waits_in_a_visible_queue(
    kube: Kube, quickstart: str, file_hotfix: FileHotfix, running_operator: OperatorProcess
) -> None:
    ns = quickstart
    file_hotfix(ns, name="first")
    kube.wait_phase(ns, "first", "AwaitingApproval")
    file_hotfix(ns, name="second", version="4.1.2-hotfix.2")
    queued = kube.wait_phase(ns, "second", "Queued")
    assert queued["status"]["queuedBehind"] == "first"
    assert "waiting for HotfixRelease first" in queued["status"]["message"]
    approve(kube, ns, "second")  # approving early does not jump the queue
    approve(kube, ns, "first")
    kube.wait_phase(ns, "first", "Succeeded")
    done = kube.wait_phase(ns, "second", "Succeeded", "RolledBack", "Failed", "Rejected", timeout=90)
    assert done["status"]["phase"] == "Succeeded"
    first = kube.release(ns, "first")["status"]["timestamps"]
    assert done["status"]["timestamps"]["approved"] >= first["completed"]


def test_deleting_a_hotfix_mid_cutover_puts_blue_back_first(
    kube: Kube, quickstart: str, file_hotfix: FileHotfix, running_operator: OperatorProcess
) -> None:
    ns = quickstart
    blue_image = kube.apps.read_namespaced_deployment("checkout", ns).spec.template.spec.containers[0].image
    file_hotfix(ns, rollout={"progressDeadlineSeconds": 30, "bakeSeconds": 60, "scaleDownDelaySeconds": 1})
    kube.wait_phase(ns, "checkout-hotfix", "AwaitingApproval")
    approve(kube, ns, "checkout-hotfix")
    kube.wait_phase(ns, "checkout-hotfix", "Promoted")
    kube.kubectl("delete", "hfr", "checkout-hotfix", "-n", ns, "--wait=false")
    wait_for(
        "the HotfixRelease to be gone",
        lambda: "NotFound" in kube.kubectl("get", "hfr", "checkout-hotfix", "-n", ns, check=False),
        timeout=60,
    )
    assert_original_shape(kube, ns, blue_image)


class TestBadInputChangesNothing:
    def test_a_missing_target_is_rejected(
        self, kube: Kube, namespace: str, file_hotfix: FileHotfix, running_operator: OperatorProcess
    ) -> None:
        file_hotfix(namespace)
        done = kube.wait_phase(namespace, "checkout-hotfix", "Rejected")
        assert condition(done, "InputValid")["reason"] == "TargetNotFound"
        assert done["status"]["message"] == f"Deployment {namespace}/checkout does not exist"

    def test_a_missing_container_is_rejected_with_the_names_there_are(
        self, kube: Kube, quickstart: str, file_hotfix: FileHotfix, running_operator: OperatorProcess
    ) -> None:
        file_hotfix(quickstart, target={"deployment": "checkout", "service": "checkout", "container": "web"})
        done = kube.wait_phase(quickstart, "checkout-hotfix", "Rejected")
        assert condition(done, "InputValid")["reason"] == "ContainerNotFound"
        assert "(it has: app)" in done["status"]["message"]

    def test_an_image_digest_absent_from_its_registry_is_rejected(
        self, kube: Kube, quickstart: str, file_hotfix: FileHotfix, running_operator: OperatorProcess, hotfix_image: Any
    ) -> None:
        absent = f"{hotfix_image.registry}/shop/checkout@sha256:{'0' * 64}"
        file_hotfix(quickstart, artifact={"image": absent, "sourceRepository": "github.com/acme/checkout"})
        done = kube.wait_phase(quickstart, "checkout-hotfix", "Rejected")
        assert condition(done, "InputValid")["reason"] == "ImageNotFound"
        assert kube.selector(quickstart, "checkout") == APP

    def test_an_unreachable_registry_keeps_it_pending_and_retrying(
        self, kube: Kube, quickstart: str, file_hotfix: FileHotfix, running_operator: OperatorProcess
    ) -> None:
        unreachable = f"127.0.0.1:9/shop/checkout@sha256:{'1' * 64}"
        file_hotfix(quickstart, artifact={"image": unreachable, "sourceRepository": "github.com/acme/checkout"})
        status = wait_for(
            "RegistryUnavailable",
            lambda: (
                obj["status"]
                if condition(obj := kube.release(quickstart, "checkout-hotfix"), "InputValid").get("reason")
                == "RegistryUnavailable"
                else None
            ),
        )
        assert status["phase"] == "Pending"
        assert "retrying" in status["message"]

    def test_a_service_that_does_not_select_the_target_is_rejected(
        self, kube: Kube, quickstart: str, file_hotfix: FileHotfix, running_operator: OperatorProcess
    ) -> None:
        kube.kubectl(
            "patch",
            "service",
            "checkout-preview",
            "-n",
            quickstart,
            "--type=merge",
            "-p",
            '{"spec":{"selector":{"app":"payments"}}}',
        )
        file_hotfix(quickstart, target={"deployment": "checkout", "service": "checkout-preview", "container": "app"})
        done = kube.wait_phase(quickstart, "checkout-hotfix", "Rejected")
        assert condition(done, "InputValid")["reason"] == "ServiceDoesNotSelectTarget"
