"""What wakes a release: the objects it registered interest in, when they change in what a reconcile reads of
them, and pods of its namespace that moved."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import kopf

from hotfix_operator import handlers
from hotfix_operator.core.lifecycle import ANY_POD
from hotfix_operator.handlers import Interest, pod_moved


def pod(ready: bool, ip: str | None = "10.244.0.7", deleting: bool = False, **status: Any) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": "checkout-abc", "labels": {"app": "checkout", "pod-template-hash": "abc"}}
    if deleting:
        meta["deletionTimestamp"] = "2026-12-01T10:00:00Z"
    return {"metadata": meta, "status": {"podIP": ip, "conditions": [
        {"type": "Ready", "status": "True" if ready else "False"}], **status}}


def test_a_release_is_woken_by_exactly_what_it_registered_last() -> None:
    interest = Interest()
    interest.register("r1", "shop", [("Deployment", "checkout"), ("Service", "checkout")])
    interest.register("r2", "shop", [("Deployment", "checkout")])
    interest.register("r1", "shop", [("Service", "checkout")])
    assert interest.of("shop", "Deployment", "checkout") == {"r2"}
    assert interest.of("shop", "Service", "checkout") == {"r1"}
    assert interest.of("other", "Service", "checkout") == set()


def test_a_pod_wakes_the_releases_of_its_namespace_that_wait_on_pods() -> None:
    interest = Interest()
    interest.register("r1", "shop", [("Deployment", "checkout"), ANY_POD])
    interest.register("r2", "shop", [("Deployment", "checkout")])  # waits on a rollout alone
    interest.register("r3", "other", [ANY_POD])
    assert interest.of("shop", *ANY_POD) == {"r1"}


def test_a_release_that_stops_waiting_is_forgotten_with_its_namespace() -> None:
    interest = Interest()
    interest.register("r1", "shop", [("Deployment", "checkout")])
    interest.register("r1", "shop", ())
    assert interest.of("shop", "Deployment", "checkout") == set() and interest._by_namespace == {}


def test_a_pod_wakes_only_when_what_the_cutover_reads_of_it_changes() -> None:
    seen: dict[str, tuple[Any, ...]] = {}
    assert pod_moved(seen, "p1", "ADDED", pod(ready=False, ip=None))
    assert not pod_moved(seen, "p1", "MODIFIED", pod(ready=False, ip=None, phase="Pending"))  # a status detail
    assert pod_moved(seen, "p1", "MODIFIED", pod(ready=False))  # an IP
    assert pod_moved(seen, "p1", "MODIFIED", pod(ready=True))  # ready
    assert not pod_moved(seen, "p1", "MODIFIED", pod(ready=True, startTime="2026-12-01T10:00:00Z"))
    assert pod_moved(seen, "p1", "MODIFIED", pod(ready=True, deleting=True))  # terminating
    assert pod_moved(seen, "p1", "DELETED", pod(ready=False, deleting=True)) and seen == {}


# -- the other kinds: a change wakes the releases interested in it only when it changes what a reconcile reads --

def _memo() -> kopf.Memo:
    interest = Interest()
    interest.register("r1", "shop", [("Deployment", "checkout"), ("Service", "checkout")])
    return kopf.Memo(pokes={"r1": asyncio.Event()}, interest=interest, seen={})


def wakes(memo: kopf.Memo, handler: Callable[[kopf.Memo, str, dict[str, Any]], None], event_type: str,
          body: dict[str, Any]) -> bool:
    poke = memo.pokes["r1"]
    poke.clear()
    handler(memo, event_type, {**body, "metadata": {"namespace": "shop", **body["metadata"]}})
    return bool(poke.is_set())


def replicaset(revision: str = "2", ready: int = 0) -> dict[str, Any]:
    owner = {"kind": "Deployment", "name": "checkout", "uid": "d1", "controller": True}
    return {"metadata": {"name": "checkout-7f5c", "uid": "rs1", "labels": {"pod-template-hash": "7f5c"},
                         "annotations": {"deployment.kubernetes.io/revision": revision}, "ownerReferences": [owner]},
            "status": {"replicas": 1, "readyReplicas": ready, "availableReplicas": ready}}


def test_a_replicaset_wakes_when_it_appears_changes_revision_or_goes_not_when_its_counts_move() -> None:
    memo = _memo()
    assert wakes(memo, handlers.replicaset_changed, "ADDED", replicaset())
    assert not wakes(memo, handlers.replicaset_changed, "MODIFIED", replicaset(ready=1))
    assert wakes(memo, handlers.replicaset_changed, "MODIFIED", replicaset(revision="3", ready=1))
    assert wakes(memo, handlers.replicaset_changed, "DELETED", replicaset(revision="3", ready=1))


def deployment(available: int = 0, progressing: str = "True", updated_at: str = "10:00:00") -> dict[str, Any]:
    return {"metadata": {"name": "checkout", "uid": "d1", "generation": 2},
            "spec": {"replicas": 1, "selector": {"matchLabels": {"app": "checkout"}}, "template": {}},
            "status": {"observedGeneration": 2, "updatedReplicas": 1, "availableReplicas": available, "conditions": [
                {"type": "Progressing", "status": progressing, "reason": "ProgressDeadlineExceeded",
                 "lastUpdateTime": f"2026-12-02T{updated_at}Z"}]}}


def test_a_deployment_wakes_on_its_rollout_and_on_being_stuck_not_on_a_conditions_timestamp() -> None:
    memo = _memo()
    assert wakes(memo, handlers.deployment_changed, "ADDED", deployment())
    assert not wakes(memo, handlers.deployment_changed, "MODIFIED", deployment(updated_at="10:00:05"))
    assert wakes(memo, handlers.deployment_changed, "MODIFIED", deployment(available=1))
    assert wakes(memo, handlers.deployment_changed, "MODIFIED", deployment(available=1, progressing="False"))


def endpoint_slice(*endpoints: tuple[str, bool], name: str = "checkout-x1") -> dict[str, Any]:
    return {"metadata": {"name": name, "uid": name, "labels": {"kubernetes.io/service-name": "checkout"}},
            "endpoints": [{"addresses": [ip], "conditions": {"ready": ready}} for ip, ready in endpoints]}


def test_an_endpoint_slice_wakes_when_its_ready_addresses_change() -> None:
    memo = _memo()
    assert wakes(memo, handlers.endpoints_changed, "ADDED", endpoint_slice(("10.0.0.1", True)))
    assert not wakes(memo, handlers.endpoints_changed, "MODIFIED",
                     endpoint_slice(("10.0.0.1", True), ("10.0.0.2", False)))  # a pod not ready yet
    assert wakes(memo, handlers.endpoints_changed, "MODIFIED", endpoint_slice(("10.0.0.1", True), ("10.0.0.2", True)))
    assert wakes(memo, handlers.endpoints_changed, "DELETED", endpoint_slice(("10.0.0.1", True), ("10.0.0.2", True)))
    # a second slice of the same Service is an object of its own
    assert wakes(memo, handlers.endpoints_changed, "ADDED", endpoint_slice(("10.0.0.1", True), name="checkout-x2"))


def test_a_service_wakes_when_its_selector_changes() -> None:
    memo = _memo()
    service = {"metadata": {"name": "checkout", "uid": "s1"}, "spec": {"selector": {"app": "checkout"}}}
    assert wakes(memo, handlers.service_changed, "ADDED", service)
    service["metadata"]["annotations"] = {"note": "x"}
    assert not wakes(memo, handlers.service_changed, "MODIFIED", service)
    assert wakes(memo, handlers.service_changed, "MODIFIED", {**service, "spec": {"selector": {"app": "other"}}})
