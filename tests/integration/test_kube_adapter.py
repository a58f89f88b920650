"""The Kubernetes adapter's deletion guard on the real API server: the operator deletes only a Deployment its
release created, and only the object it read (the uid is the delete's precondition)."""

from __future__ import annotations

from typing import Any

import pytest
from kubernetes.client.exceptions import ApiException

from hotfix_operator.adapters.kube import KubeAdapter
from hotfix_operator.api import LABEL_RELEASE_UID
from hotfix_operator.core.actions import DeleteDeployment
from tests.kube import Kube, wait_for
from tests.support.releases import release_object

NAME = "checkout-green"


def green_manifest(release_uid: str) -> dict[str, Any]:
    labels = {"app": "checkout-green", LABEL_RELEASE_UID: release_uid}
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": NAME, "labels": labels},
            "spec": {"replicas": 0, "selector": {"matchLabels": {"app": "checkout-green"}},
                     "template": {"metadata": {"labels": {"app": "checkout-green"}},
                                  "spec": {"containers": [{"name": "app", "image": "registry.example/app:1"}]}}}}


def absent(kube: Kube, namespace: str) -> bool:
    try:
        kube.apps.read_namespaced_deployment(NAME, namespace)
    except ApiException as exc:
        return bool(exc.status == 404)
    return False


def test_a_deployment_replaced_between_the_read_and_the_delete_is_left_alone(
        kube: Kube, namespace: str, monkeypatch: pytest.MonkeyPatch) -> None:
    release = release_object().model_copy(update={"namespace": namespace})
    kube.apply(green_manifest(release.uid), namespace)
    adapter = KubeAdapter(kube.api)
    read = adapter.rest.get

    def read_then_replace(path: str, **query: str) -> dict[str, Any]:
        seen = read(path, **query)
        # someone deletes it and creates another under the same name, with the same labels, before the delete lands
        kube.apps.delete_namespaced_deployment(NAME, namespace)
        wait_for("the first Deployment gone", lambda: absent(kube, namespace))
        kube.apply(green_manifest(release.uid), namespace)
        return seen

    monkeypatch.setattr(adapter.rest, "get", read_then_replace)
    with pytest.raises(RuntimeError, match="replaced since it was read"):
        adapter.execute(release, DeleteDeployment(NAME, release.uid))
    assert not absent(kube, namespace), "the replacement was deleted"

    monkeypatch.setattr(adapter.rest, "get", read)
    assert adapter.execute(release, DeleteDeployment(NAME, release.uid)) == f"deleted Deployment {NAME}"
    wait_for("the Deployment deleted", lambda: absent(kube, namespace))
    assert adapter.execute(release, DeleteDeployment(NAME, release.uid)) == f"Deployment {NAME} already gone"


def test_a_deployment_another_release_created_is_not_deleted(kube: Kube, namespace: str) -> None:
    release = release_object().model_copy(update={"namespace": namespace})
    kube.apply(green_manifest("someone-elses-release"), namespace)
    with pytest.raises(RuntimeError, match="not created by this release"):
        KubeAdapter(kube.api).execute(release, DeleteDeployment(NAME, release.uid))
    assert not absent(kube, namespace)
