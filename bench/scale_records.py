"""Completed HotfixReleases in bulk, as a real completed release looks: one release is run to Succeeded on the
real operator, then copied under new names: filed by alice (its spec without the approval, as admission
requires), approved by bob (the same approval), and given the finished status through the status subresource,
with the metadata the operator left on it (Kopf's annotations, the finalizer)."""

from __future__ import annotations

import copy
import json
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from kubernetes import client

from localcluster.cluster import LocalCluster
from scale_fleet import APPROVAL, GROUP, PLURAL, VERSION, api_as

KEEP_METADATA = ("labels", "annotations", "finalizers")


@dataclass(frozen=True)
class Template:
    """A finished release's body, from which copies are made."""

    body: dict[str, Any]

    def filed(self, ns: str, name: str) -> dict[str, Any]:
        """What alice files: the spec with no approvals, the operator's metadata kept."""
        meta = {k: copy.deepcopy(self.body["metadata"][k]) for k in KEEP_METADATA if k in self.body["metadata"]}
        spec = copy.deepcopy(self.body["spec"])
        spec.setdefault("approval", {})["approvals"] = []
        return {"apiVersion": self.body["apiVersion"], "kind": self.body["kind"],
                "metadata": {**meta, "name": name, "namespace": ns}, "spec": spec}

    def status_for(self, uid: str) -> dict[str, Any]:
        """The finished status as this copy's own: the template's uid (notification keys, green's name) is its."""
        old = self.body["metadata"]["uid"]
        text = json.dumps(self.body["status"]).replace(old, uid).replace(old[:8], uid[:8])
        found: dict[str, Any] = json.loads(text)
        return found


def read_release(cluster: LocalCluster, ns: str, name: str) -> dict[str, Any]:
    found = client.CustomObjectsApi(api_as(cluster)).get_namespaced_custom_object(GROUP, VERSION, ns, PLURAL, name)
    assert isinstance(found, dict)
    return found


def copy_records(cluster: LocalCluster, template: Template, names: list[tuple[str, str]], workers: int = 12) -> None:
    """Each (namespace, name) filed, approved and finished like `template`."""
    alice = client.CustomObjectsApi(api_as(cluster, "alice"))
    bob = client.CustomObjectsApi(api_as(cluster, "bob"))
    admin = client.CustomObjectsApi(api_as(cluster))

    def one(key: tuple[str, str]) -> None:
        ns, name = key
        created = json.loads(alice.create_namespaced_custom_object(GROUP, VERSION, ns, PLURAL, template.filed(
            ns, name), _preload_content=False).data)
        status = {"status": template.status_for(created["metadata"]["uid"])}
        bob.patch_namespaced_custom_object(GROUP, VERSION, ns, PLURAL, name, APPROVAL,
                                           _content_type="application/json-patch+json", _preload_content=False)
        admin.patch_namespaced_custom_object_status(GROUP, VERSION, ns, PLURAL, name, status,
                                                    _content_type="application/merge-patch+json",
                                                    _preload_content=False)

    with ThreadPoolExecutor(max_workers=workers) as pool:
        list(pool.map(one, names))
