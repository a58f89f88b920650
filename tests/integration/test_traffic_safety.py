"""Production never goes dark: with the EndpointSlice controller frozen (kube-controller-manager under
SIGSTOP) or the kube-apiserver restarted mid-cutover, the operator removes nothing that serves, or that
the Service falls back to, until the EndpointSlices show the other side serving; the terminal phase is
written only after that; and the bake is counted from the switch seen there, not from the decision.

Each test samples the active Service's EndpointSlices at 20 Hz throughout (tests/support/traffic.py)."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import pytest

from localcluster.cluster import LocalCluster
from tests.integration.conftest import FileHotfix, OperatorProcess, abort, approve
from tests.kube import Kube, wait_for
from tests.support.cutover import APP, assert_original_shape, condition, pods_by_hash
from tests.support.traffic import EndpointSampler

NAME = "checkout-hotfix"
KCM = "kube-controller-manager"


def pinned(kube: Kube, namespace: str) -> str | None:
    return kube.selector(namespace, "checkout").get("pod-template-hash")


def green_exists(kube: Kube, namespace: str) -> bool:
    return bool(kube.apps.list_namespaced_deployment(namespace, label_selector="hotfix.dev/role=green").items)


def green_deployment(kube: Kube, namespace: str) -> str:
    items = kube.apps.list_namespaced_deployment(namespace, label_selector="hotfix.dev/role=green").items
    assert len(items) == 1, [d.metadata.name for d in items]
    return str(items[0].metadata.name)


def baking_on_green(kube: Kube, namespace: str) -> dict[str, Any]:
    return wait_for(
        "traffic seen on green",
        lambda: obj if condition(obj := kube.release(namespace, NAME), "TrafficSwitched").get("status") == "True"
        and obj["status"]["phase"] == "Promoted" else None,
        timeout=60,
    )


def approve_a_long_bake(kube: Kube, ns: str, file_hotfix: FileHotfix) -> tuple[set[str], str, dict[str, Any]]:
    """File and approve a hotfix with a long bake; return blue's pod IPs and image, and the release baking."""
    blue_ips = kube.pod_ips(ns, APP)
    blue_image = kube.apps.read_namespaced_deployment("checkout", ns).spec.template.spec.containers[0].image
    file_hotfix(ns, rollout={"progressDeadlineSeconds": 60, "bakeSeconds": 300, "scaleDownDelaySeconds": 1})
    kube.wait_phase(ns, NAME, "AwaitingApproval")
    approve(kube, ns, NAME)
    return blue_ips, blue_image, baking_on_green(kube, ns)


def sampler(cluster: LocalCluster, namespace: str) -> EndpointSampler:
    return EndpointSampler(cluster.kubeconfig, namespace, "checkout", NAME)


def assert_removed_only_after_the_other_side_served(samples: EndpointSampler, serving: set[str], phase: str) -> None:
    """Whenever green was gone, or the terminal phase was already written, only `serving` pods took traffic."""
    for s in samples.observed:
        if not s.green_exists or s.phase == phase:
            assert s.ready and s.ready <= serving, f"{s} while the serving side is {sorted(serving)}"


def test_a_rollback_keeps_green_until_blue_is_seen_serving_across_a_frozen_controller_manager_and_an_api_restart(
    kube: Kube, cluster: LocalCluster, quickstart: str, file_hotfix: FileHotfix, running_operator: OperatorProcess
) -> None:
    ns = quickstart
    blue_ips, blue_image, baking = approve_a_long_bake(kube, ns, file_hotfix)
    green_hash = baking["status"]["blueGreen"]["greenHash"]
    green_pods = [p.metadata.name for p in kube.core.list_namespaced_pod(ns, label_selector="hotfix.dev/role=green")
                  .items]
    with sampler(cluster, ns) as samples:
        # Sequence the fault: the operator must see green lose a pod only once the controllers are frozen.
        running_operator.pause()
        try:
            kube.kubectl("patch", "pod", green_pods[0], "-n", ns, "--subresource=status", "--type=strategic", "-p",
                         json.dumps({"status": {"conditions": [{"type": "Ready", "status": "False"}]}}))
            green = green_deployment(kube, ns)
            wait_for("green to count one pod unavailable", lambda: (
                kube.apps.read_namespaced_deployment(green, ns).status.available_replicas or 0) == 2)
            cluster.pause(KCM)
        finally:
            running_operator.resume()
        try:
            kube.wait_phase(ns, NAME, "RollingBack", timeout=30)
            blue_hash = kube.release(ns, NAME)["status"]["blueGreen"]["blueHash"]
            wait_for("the operator to point Service checkout back at blue", lambda: pinned(kube, ns) == blue_hash)
            cluster.restart("kube-apiserver")  # informers everywhere go stale, as in the chaos run
            time.sleep(2)
            held = kube.release(ns, NAME)["status"]
            assert held["phase"] == "RollingBack", held["message"]
            assert "EndpointSlices" in held["message"] and "only blue pods" in held["message"], held["message"]
            assert green_exists(kube, ns), "green still serves every request, so it must stay"
            assert kube.endpoint_ips(ns, "checkout") <= pods_by_hash(kube, ns)[green_hash]
        finally:
            cluster.resume(KCM)
        done = kube.wait_phase(ns, NAME, "RolledBack", "Failed", "Succeeded", timeout=90)
    assert done["status"]["phase"] == "RolledBack", done["status"]["message"]
    print(samples.summary())
    samples.assert_never_dark()
    assert_removed_only_after_the_other_side_served(samples, blue_ips, "RolledBack")
    assert_original_shape(kube, ns, blue_image)
    assert done["status"]["timestamps"]["blueRestored"] <= done["status"]["timestamps"]["completed"]


def test_an_abort_with_frozen_endpoint_slices_warns_keeps_both_sides_and_finishes_once_they_catch_up(
    kube: Kube, cluster: LocalCluster, quickstart: str, file_hotfix: FileHotfix, running_operator: OperatorProcess
) -> None:
    ns = quickstart
    blue_ips, blue_image, _ = approve_a_long_bake(kube, ns, file_hotfix)
    with sampler(cluster, ns) as samples:
        with cluster.paused(KCM):
            abort(kube, ns, NAME, by="bob", reason="aborting while the EndpointSlices are frozen")
            warned = wait_for("the operator to say the switch back is not seen", lambda: obj if condition(
                obj := kube.release(ns, NAME), "TrafficSwitched").get("reason") == "EndpointsNotConfirmed" else None,
                timeout=45)
            assert warned["status"]["phase"] == "RollingBack"
            assert "both sides are kept running" in warned["status"]["message"]
            assert green_exists(kube, ns)
            # Events are posted off the reconcile's path: the Warning follows the status by a moment
            events = wait_for("one EndpointsNotConfirmed Warning", lambda: kube.core.list_namespaced_event(
                ns, field_selector="involvedObject.kind=HotfixRelease,type=Warning,"
                "reason=EndpointsNotConfirmed").items, timeout=10)
            assert len(events) == 1 and "kube-controller-manager" in events[0].message
        done = kube.wait_phase(ns, NAME, "RolledBack", "Failed", "Succeeded", timeout=60)
    assert done["status"]["phase"] == "RolledBack", done["status"]["message"]
    print(samples.summary())
    samples.assert_never_dark()
    assert_removed_only_after_the_other_side_served(samples, blue_ips, "RolledBack")
    assert_original_shape(kube, ns, blue_image)


def current_hash(kube: Kube, namespace: str) -> str | None:
    """The pod-template-hash of Deployment checkout's current ReplicaSet, once it has fully rolled out."""
    dep = kube.apps.read_namespaced_deployment("checkout", namespace)
    st = dep.status
    if (st.observed_generation or 0) < dep.metadata.generation or (st.updated_replicas or 0) < 3 or \
            (st.available_replicas or 0) < 3 or (st.replicas or 0) != 3:
        return None
    revision = dep.metadata.annotations.get("deployment.kubernetes.io/revision")
    for rs in kube.apps.list_namespaced_replica_set(namespace, label_selector="app=checkout").items:
        if (rs.metadata.annotations or {}).get("deployment.kubernetes.io/revision") == revision and \
                any(o.uid == dep.metadata.uid for o in rs.metadata.owner_references or []):
            return str(rs.metadata.labels["pod-template-hash"])
    return None


def test_the_fold_keeps_green_until_the_folded_deployment_is_seen_serving(
    kube: Kube, cluster: LocalCluster, quickstart: str, file_hotfix: FileHotfix, running_operator: OperatorProcess
) -> None:
    ns = quickstart
    # a bake of a few seconds: long enough to be seen baking (status times are whole seconds, so a 1 s bake
    # can end within a fraction of a second of the switch), short enough not to slow the test
    manifest = file_hotfix(ns, rollout={"progressDeadlineSeconds": 60, "bakeSeconds": 4, "scaleDownDelaySeconds": 1})
    image = manifest["spec"]["artifact"]["image"]
    kube.wait_phase(ns, NAME, "AwaitingApproval")
    approve(kube, ns, NAME)
    green_hash = baking_on_green(kube, ns)["status"]["blueGreen"]["greenHash"]
    with sampler(cluster, ns) as samples:
        wait_for("the operator to roll Deployment checkout to the hotfix image",
                 lambda: kube.apps.read_namespaced_deployment("checkout", ns).spec.template.spec.containers[0].image
                 == image, timeout=60, interval=0.01)
        running_operator.pause()  # so it sees the rollout finish only once the controllers are frozen
        try:
            folded = wait_for("checkout to roll out the hotfix", lambda: current_hash(kube, ns), timeout=60)
            assert pinned(kube, ns) == green_hash, "still on green while the Deployment rolled"
            cluster.pause(KCM)
        finally:
            running_operator.resume()
        try:
            wait_for("the operator to point Service checkout at the folded Deployment",
                     lambda: pinned(kube, ns) == folded, timeout=30)
            time.sleep(3)  # well past scaleDownDelaySeconds
            held = kube.release(ns, NAME)["status"]
            assert held["phase"] == "Finalizing", held["message"]
            assert green_exists(kube, ns), "the EndpointSlices still list green, so green must stay"
            assert kube.endpoint_ips(ns, "checkout") <= pods_by_hash(kube, ns)[green_hash]
        finally:
            cluster.resume(KCM)
        done = kube.wait_phase(ns, NAME, "Succeeded", "RolledBack", "Failed", timeout=90)
    assert done["status"]["phase"] == "Succeeded", done["status"]["message"]
    print(samples.summary())
    samples.assert_never_dark()
    assert_removed_only_after_the_other_side_served(samples, kube.pod_ips(ns, APP), "Succeeded")
    assert_original_shape(kube, ns, image)


BLOCK_SWITCH = "test-block-switch"


@pytest.fixture
def switch_blocked(kube: Kube, quickstart: str) -> Iterator[Any]:
    """An admission policy that refuses any change to a Service selector pinned to a pod-template-hash in
    this namespace: the operator can pin blue but cannot switch, until the test lifts it."""
    ns = quickstart
    name = f"{BLOCK_SWITCH}-{ns}"[:63]
    policy = {"apiVersion": "admissionregistration.k8s.io/v1", "kind": "ValidatingAdmissionPolicy",
              "metadata": {"name": name},
              "spec": {"failurePolicy": "Fail",
                       "matchConstraints": {"resourceRules": [{"apiGroups": [""], "apiVersions": ["v1"],
                                                               "operations": ["UPDATE"], "resources": ["services"]}]},
                       "validations": [{"expression": "!has(oldObject.spec.selector) || "
                                        "!('pod-template-hash' in oldObject.spec.selector) || "
                                        "object.spec.selector == oldObject.spec.selector",
                                        "message": "test: the switch is blocked"}]}}
    binding = {"apiVersion": "admissionregistration.k8s.io/v1", "kind": "ValidatingAdmissionPolicyBinding",
               "metadata": {"name": name},
               "spec": {"policyName": name, "validationActions": ["Deny"],
                        "matchResources": {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": ns}}}}}
    probe = {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "switch-probe"},
             "spec": {"selector": {"app": "none", "pod-template-hash": "a"}, "ports": [{"port": 80}]}}
    kube.apply(probe, ns)

    def blocked() -> bool:
        out = kube.kubectl("patch", "service", "switch-probe", "-n", ns, "--dry-run=server", "--type=merge", "-p",
                           '{"spec":{"selector":{"pod-template-hash":"b"}}}', check=False)
        return "the switch is blocked" in out

    kube.apply([policy, binding], ns)
    wait_for("the blocking policy to take effect", blocked, timeout=30)

    def lift() -> None:
        kube.kubectl("delete", "validatingadmissionpolicybinding", name, "--ignore-not-found")
        kube.kubectl("delete", "validatingadmissionpolicy", name, "--ignore-not-found")
        wait_for("the blocking policy to be lifted", lambda: not blocked(), timeout=30)

    yield lift
    lift()


def test_a_kill_between_the_decision_to_switch_and_the_switch_still_gives_green_its_full_bake(
    kube: Kube, cluster: LocalCluster, quickstart: str, file_hotfix: FileHotfix, running_operator: OperatorProcess,
    switch_blocked: Any,
) -> None:
    ns, bake = quickstart, 6
    file_hotfix(ns, rollout={"progressDeadlineSeconds": 60, "bakeSeconds": bake, "scaleDownDelaySeconds": 1})
    kube.wait_phase(ns, NAME, "AwaitingApproval")
    approve(kube, ns, NAME)
    with sampler(cluster, ns) as samples:
        promoted = kube.wait_phase(ns, NAME, "Promoted", timeout=60)
        blue_green = promoted["status"]["blueGreen"]
        blue_hash, green_hash = blue_green["blueHash"], blue_green["greenHash"]
        green_ips = pods_by_hash(kube, ns)[green_hash]
        time.sleep(4)  # the switch was decided and written; admission refuses the selector change
        assert pinned(kube, ns) == blue_hash, "the switch has not happened"
        running_operator.kill()
        switch_blocked()
        running_operator.start()
        done = kube.wait_phase(ns, NAME, "Succeeded", "RolledBack", "Failed", timeout=90)
    assert done["status"]["phase"] == "Succeeded", done["status"]["message"]
    print(samples.summary())
    samples.assert_never_dark()
    on_green = samples.first(lambda s: s.ready and s.ready <= green_ips)
    folding = samples.first(lambda s: s.phase == "Finalizing")
    assert on_green is not None and folding is not None
    # status times are whole seconds, so the bake as seen from outside may be up to 1 s shorter
    assert folding.at - on_green.at >= bake - 1.0, f"green carried traffic {folding.at - on_green.at:.1f}s of {bake}s"
    status = done["status"]
    switched = [a for a in status["audit"] if a["action"] == "TrafficSwitched"]
    assert switched[0]["time"] == status["timestamps"]["promoted"]
    assert [a["action"] for a in status["audit"]].count("Promoted") == 1
