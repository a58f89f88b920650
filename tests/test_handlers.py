"""What wakes a release: the objects it registered interest in, and pods of its namespace that moved."""

from __future__ import annotations

from typing import Any

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
    assert interest.in_namespace("shop") == {"r1", "r2"}


def test_a_release_that_stops_waiting_is_forgotten_with_its_namespace() -> None:
    interest = Interest()
    interest.register("r1", "shop", [("Deployment", "checkout")])
    interest.register("r1", "shop", ())
    assert interest.in_namespace("shop") == set() and interest._by_namespace == {}


def test_a_pod_wakes_only_when_what_the_cutover_reads_of_it_changes() -> None:
    seen: dict[str, tuple[Any, ...]] = {}
    assert pod_moved(seen, "p1", "ADDED", pod(ready=False, ip=None))
    assert not pod_moved(seen, "p1", "MODIFIED", pod(ready=False, ip=None, phase="Pending"))  # a status detail
    assert pod_moved(seen, "p1", "MODIFIED", pod(ready=False))  # an IP
    assert pod_moved(seen, "p1", "MODIFIED", pod(ready=True))  # ready
    assert not pod_moved(seen, "p1", "MODIFIED", pod(ready=True, startTime="2026-12-01T10:00:00Z"))
    assert pod_moved(seen, "p1", "MODIFIED", pod(ready=True, deleting=True))  # terminating
    assert pod_moved(seen, "p1", "DELETED", pod(ready=False, deleting=True)) and seen == {}
