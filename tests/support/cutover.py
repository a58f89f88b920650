"""What a finished cutover must look like on the real cluster, and small readers used to check it."""

from __future__ import annotations

from typing import Any

from tests.kube import Kube, wait_for

APP = {"app": "checkout"}


def pods_by_hash(kube: Kube, namespace: str) -> dict[str, set[str]]:
    result: dict[str, set[str]] = {}
    for pod in kube.core.list_namespaced_pod(namespace, label_selector="app=checkout").items:
        if pod.status.pod_ip and pod.metadata.deletion_timestamp is None:
            result.setdefault(pod.metadata.labels["pod-template-hash"], set()).add(pod.status.pod_ip)
    return result


def condition(obj: dict[str, Any], type_: str) -> dict[str, Any]:
    return next((c for c in (obj.get("status") or {}).get("conditions", []) if c["type"] == type_), {})


def assert_original_shape(kube: Kube, namespace: str, image: str) -> None:
    """One Deployment running `image`, the original selectors, no green left, endpoints = its pods."""
    dep = kube.apps.read_namespaced_deployment("checkout", namespace)
    assert dep.spec.template.spec.containers[0].image == image
    assert kube.selector(namespace, "checkout") == APP
    assert kube.selector(namespace, "checkout-preview") == APP
    names = [d.metadata.name for d in kube.apps.list_namespaced_deployment(namespace).items]
    assert names == ["checkout"], names
    wait_for(
        "endpoints to equal the Deployment's pods",
        lambda: (
            kube.endpoint_ips(namespace, "checkout") == kube.pod_ips(namespace, APP)
            and len(kube.endpoint_ips(namespace, "checkout")) == 3
        ),
    )
