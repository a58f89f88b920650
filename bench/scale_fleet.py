"""Many hotfixes at once on the real local control plane: namespaces with the quickstart app applied in one
request, one signed image they all ship (bench_cutover's policy, manifest and approval), the approvals sent
together, and one cluster-wide watch each on HotfixReleases and Deployments timing every release."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import yaml
from kubernetes import client, config, watch

from bench_cutover import APP, COMMIT, SOURCE, bench_policy, hotfix
from localcluster.cluster import LocalCluster
from localcluster.oci import PushedImage, Pusher
from localcluster.signing import LocalSigner, slsa_v1_statement

GROUP, VERSION, PLURAL = "hotfix.dev", "v1alpha1", "hotfixreleases"
APPROVAL = [{"op": "add", "path": "/spec/approval/approvals/-", "value": {
    "approver": "bob", "decision": "Approve", "groups": ["hotfix:approvers", "system:authenticated"]}}]
FINISHED = frozenset({"Succeeded", "RolledBack", "Failed", "Rejected", "Expired"})


def api_as(cluster: LocalCluster, user: str | None = None) -> client.ApiClient:
    path = cluster.user_kubeconfig(user) if user else cluster.kubeconfig
    api = config.new_client_from_config(config_file=str(path))
    api.configuration.connection_pool_maxsize = 32
    return api


def app_objects(replicas: int) -> list[dict[str, Any]]:
    objects = [o for o in yaml.safe_load_all(APP.read_text()) if o]
    for o in objects:
        if o["kind"] == "Deployment":
            o["spec"]["replicas"] = replicas
    return objects


def apply_list(cluster: LocalCluster, items: list[dict[str, Any]], user: str | None = None, chunk: int = 300) -> None:
    for start in range(0, len(items), chunk):
        cluster.kubectl("apply", "-f", "-", user=user, stdin=json.dumps(
            {"apiVersion": "v1", "kind": "List", "items": items[start:start + chunk]}))


def prepare_namespaces(cluster: LocalCluster, names: list[str], label: str, replicas: int) -> None:
    """Each namespace under the policy `label` with the quickstart app (Deployment `replicas`), all rolled out."""
    items: list[dict[str, Any]] = [{"apiVersion": "v1", "kind": "Namespace", "metadata": {
        "name": ns, "labels": {"hotfix.dev/policy": label}}} for ns in names]
    apply_list(cluster, items)
    apps = app_objects(replicas)
    apply_list(cluster, [{**o, "metadata": {**o["metadata"], "namespace": ns}} for ns in names for o in apps])
    wait_available(cluster, set(names), replicas)


def wait_available(cluster: LocalCluster, names: set[str], replicas: int, timeout: float = 600) -> None:
    api = client.AppsV1Api(api_as(cluster))
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        ready = {d.metadata.namespace for d in api.list_deployment_for_all_namespaces(
            field_selector="metadata.name=checkout").items
            if d.metadata.namespace in names and (d.status.available_replicas or 0) == replicas}
        if ready == names:
            return
        time.sleep(0.5)
    raise SystemExit(f"the app did not roll out in {len(names)} namespaces within {timeout:.0f}s")


def signed_image(cluster: LocalCluster, signer: LocalSigner, tag: str) -> PushedImage:
    with Pusher(cluster.registry_host, cluster.ca_file) as pusher:
        image = pusher.push_image("shop/checkout", tag, {"app": tag.encode()})
        signer.attest(pusher, image.repository, image.digest, slsa_v1_statement(
            f"{image.registry}/{image.repository}", image.digest, SOURCE, COMMIT))
    return image


def install_policy(cluster: LocalCluster, signer: LocalSigner, label: str, checks: dict[str, Any] | None,
                   undo_window_seconds: int | None = None) -> None:
    policy = bench_policy(signer, label, checks, registry_host=cluster.registry_host)
    if undo_window_seconds is not None:
        policy["spec"]["undo"] = {"windowSeconds": undo_window_seconds}
    cluster.kubectl("apply", "-f", "-", stdin=json.dumps(policy))


def release_manifest(image: PushedImage, ns: str, checks: dict[str, Any] | None) -> dict[str, Any]:
    manifest = hotfix(image, 0, 0, checks)
    manifest["metadata"]["namespace"] = ns
    return manifest


@dataclass
class Fleet:
    """What a cluster-wide watch saw per namespace, each moment the first time (time.monotonic())."""

    seen: dict[str, dict[str, float]] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def mark(self, ns: str, moment: str) -> None:
        with self._lock:
            self.seen.setdefault(ns, {}).setdefault(moment, time.monotonic())

    def at(self, ns: str, moment: str) -> float | None:
        return self.seen.get(ns, {}).get(moment)

    def count(self, names: list[str], moments: frozenset[str]) -> int:
        return sum(1 for ns in names if moments & self.seen.get(ns, {}).keys())

    def on_release(self, obj: dict[str, Any]) -> None:
        phase = (obj.get("status") or {}).get("phase")
        if phase:
            self.mark(obj["metadata"]["namespace"], phase)

    def on_deployment(self, obj: dict[str, Any]) -> None:
        meta, spec, status = obj["metadata"], obj.get("spec") or {}, obj.get("status") or {}
        ns, replicas = meta["namespace"], spec.get("replicas", 1)
        rolled_out = status.get("availableReplicas", 0) >= replicas and status.get("updatedReplicas", 0) >= replicas \
            and status.get("observedGeneration", 0) >= meta.get("generation", 1) \
            and status.get("replicas", 0) == replicas
        if (meta.get("labels") or {}).get("hotfix.dev/role") == "green":
            self.mark(ns, "green created")
            if rolled_out:
                self.mark(ns, "green available")
        elif meta.get("name") == "checkout":
            image = (((spec.get("template") or {}).get("spec") or {}).get("containers") or [{}])[0].get("image", "")
            if "@sha256:" in image:
                self.mark(ns, "fold started")
                if rolled_out:
                    self.mark(ns, "fold rolled out")


@dataclass
class Watching:
    """Two cluster-wide watches (HotfixReleases, Deployments) on threads, feeding a Fleet."""

    cluster: LocalCluster
    fleet: Fleet = field(default_factory=Fleet)
    _stop: threading.Event = field(default_factory=threading.Event)

    def __enter__(self) -> Watching:
        api = api_as(self.cluster)
        custom, apps = client.CustomObjectsApi(api), client.AppsV1Api(api)
        follows: list[tuple[Callable[..., Any], tuple[Any, ...], Callable[[dict[str, Any]], None]]] = [
            (custom.list_cluster_custom_object, (GROUP, VERSION, PLURAL), self.fleet.on_release),
            (apps.list_deployment_for_all_namespaces, (), self.fleet.on_deployment)]
        self._opened = threading.Barrier(len(follows) + 1)
        for lister, args, on_event in follows:
            threading.Thread(target=self._follow, args=(lister, args, on_event), daemon=True).start()
        self._opened.wait(timeout=30)
        return self

    def _follow(self, lister: Callable[..., Any], args: tuple[Any, ...],
                on_event: Callable[[dict[str, Any]], None]) -> None:
        first = True
        while not self._stop.is_set():
            try:
                listed = json.loads(lister(*args, _preload_content=False).data)
                for item in listed.get("items", []):
                    on_event(item)
                if first:
                    self._opened.wait(timeout=30)
                    first = False
                stream: Iterator[dict[str, Any]] = watch.Watch().stream(
                    lister, *args, resource_version=listed["metadata"]["resourceVersion"], deserialize=False,
                    timeout_seconds=60)
                for event in stream:
                    if self._stop.is_set():
                        return
                    if event.get("type") in ("ADDED", "MODIFIED") and isinstance(event.get("object"), dict):
                        on_event(event["object"])
            except Exception:  # a broken watch is listed and watched again; nothing is missed
                time.sleep(0.5)

    def __exit__(self, *_: object) -> None:
        self._stop.set()


def file_all(cluster: LocalCluster, manifests: list[dict[str, Any]]) -> None:
    apply_list(cluster, manifests, user="alice", chunk=100)


def approve_all(cluster: LocalCluster, namespaces: list[str], workers: int = 8) -> dict[str, float]:
    """bob approves every namespace's release `hf` at once; the time each approval's patch returned."""
    custom = client.CustomObjectsApi(api_as(cluster, "bob"))

    def approve(ns: str) -> tuple[str, float]:
        custom.patch_namespaced_custom_object(GROUP, VERSION, ns, PLURAL, "hf", APPROVAL,
                                              _content_type="application/json-patch+json")
        return ns, time.monotonic()

    with ThreadPoolExecutor(max_workers=workers) as pool:
        return dict(pool.map(approve, namespaces))


def wait_until(what: str, done: Callable[[], bool], timeout: float, alive: Callable[[], None]) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        alive()
        if done():
            return
        time.sleep(0.05)
    raise SystemExit(f"timed out after {timeout:.0f}s waiting for {what}")
