"""A small test-side view of the real cluster: the admin API client, kubectl as any user, waits."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any, TypeVar

from kubernetes import client, config

from localcluster.cluster import LocalCluster

T = TypeVar("T")


def wait_for(what: str, probe: Callable[[], T | None], timeout: float = 60.0, interval: float = 0.25) -> T:
    """Poll until `probe` returns something truthy; fail with `what` and the last value seen."""
    deadline = time.monotonic() + timeout
    last: T | None = None
    while time.monotonic() < deadline:
        last = probe()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}; last seen: {last!r}")


class Kube:
    def __init__(self, cluster: LocalCluster) -> None:
        self.cluster = cluster
        self.api = config.new_client_from_config(config_file=str(cluster.kubeconfig))
        self.core = client.CoreV1Api(self.api)
        self.apps = client.AppsV1Api(self.api)
        self.custom = client.CustomObjectsApi(self.api)
        self.discovery = client.DiscoveryV1Api(self.api)

    def kubectl(self, *args: str, user: str | None = None, stdin: str | None = None, check: bool = True) -> str:
        result = self.cluster.kubectl(*args, user=user, stdin=stdin, check=False)
        if check and result.returncode != 0:
            raise AssertionError(f"kubectl {' '.join(args)} as {user or 'admin'} failed: {result.stderr}")
        return result.stdout if check else result.stdout + result.stderr

    def apply(
        self,
        manifest: dict[str, Any] | list[dict[str, Any]],
        namespace: str,
        user: str | None = None,
        check: bool = True,
        validate: bool = True,
    ) -> str:
        items = manifest if isinstance(manifest, list) else [manifest]
        body = json.dumps({"apiVersion": "v1", "kind": "List", "items": items})
        flags = [] if validate else ["--validate=false"]
        return self.kubectl("apply", "-n", namespace, *flags, "-f", "-", user=user, stdin=body, check=check)

    def release(self, namespace: str, name: str) -> dict[str, Any]:
        obj: dict[str, Any] = self.custom.get_namespaced_custom_object(
            "hotfix.dev", "v1alpha1", namespace, "hotfixreleases", name
        )
        return obj

    def phase(self, namespace: str, name: str) -> str | None:
        return (self.release(namespace, name).get("status") or {}).get("phase")

    def wait_phase(self, namespace: str, name: str, *phases: str, timeout: float = 90.0) -> dict[str, Any]:
        def probe() -> dict[str, Any] | None:
            obj = self.release(namespace, name)
            return obj if (obj.get("status") or {}).get("phase") in phases else None

        try:
            return wait_for(f"{name} to reach {phases}", probe, timeout)
        except AssertionError as exc:
            status = self.release(namespace, name).get("status") or {}
            raise AssertionError(f"{exc}\nphase={status.get('phase')} message={status.get('message')}") from None

    def selector(self, namespace: str, service: str) -> dict[str, str]:
        return dict(self.core.read_namespaced_service(service, namespace).spec.selector or {})

    def endpoint_ips(self, namespace: str, service: str) -> set[str]:
        ips: set[str] = set()
        for s in self.discovery.list_namespaced_endpoint_slice(
            namespace, label_selector=f"kubernetes.io/service-name={service}"
        ).items:
            for e in s.endpoints or []:
                if not e.conditions or e.conditions.ready is not False:
                    ips.update(e.addresses or [])
        return ips

    def pod_ips(self, namespace: str, labels: dict[str, str]) -> set[str]:
        selector = ",".join(f"{k}={v}" for k, v in labels.items())
        return {
            p.status.pod_ip
            for p in self.core.list_namespaced_pod(namespace, label_selector=selector).items
            if p.status.pod_ip and p.metadata.deletion_timestamp is None
        }
