"""Kubernetes I/O for the operator: read what the lifecycle needs, carry out its actions
idempotently, write status and Events. Synchronous (the kubernetes client); the Kopf handlers call
it from a worker thread."""

from __future__ import annotations

import datetime
import logging
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from kubernetes import client
from kubernetes.client.exceptions import ApiException

from hotfix_operator.adapters.kube_rest import (
    JSON_PATCH,
    MERGE_PATCH,
    STRATEGIC_MERGE,
    KubeRest,
    namespaced_path,
)
from hotfix_operator.adapters.watch_cache import (
    Entry,
    WatchCache,
    deployment_entry,
    endpoint_entry,
    pod_entry,
    replicaset_entry,
    replicaset_owner,
    service_entry,
    stuck_reason,
)
from hotfix_operator.api import (
    API_GROUP,
    API_VERSION,
    FINALIZER,
    LABEL_RELEASE_UID,
    LABEL_SERVICE_NAME,
    LABEL_SETTLED,
    OPERATOR,
    PLURAL,
    POD_TEMPLATE_HASH,
    Phase,
)
from hotfix_operator.core.actions import (
    Action,
    CreateDeployment,
    DeleteDeployment,
    Event,
    SetContainerImage,
    SetServiceSelector,
)
from hotfix_operator.core.governance import ApprovalCheck, GovernanceRules
from hotfix_operator.core.model import Release, Status
from hotfix_operator.core.observations import (
    DeploymentView,
    ImageCheck,
    Observations,
    ProvenanceCheck,
    ServiceView,
)
from hotfix_operator.core.undo import observed_green
from hotfix_operator.formats import parse_utc_iso, utc_iso

log = logging.getLogger(__name__)


def _ready_ips(pods: list[Entry], release_uid: str) -> tuple[dict[str, frozenset[str]], int]:
    """Ready pod IPs per pod-template-hash, and how many pods (any state) belong to this release's green."""
    ready: dict[str, set[str]] = {}
    green_pods = 0
    for pod in pods:
        labels = pod["labels"]
        if labels.get(LABEL_RELEASE_UID) == release_uid:
            green_pods += 1
        if not pod["deleting"] and pod["ip"] and pod["ready"]:
            ready.setdefault(labels.get(POD_TEMPLATE_HASH, ""), set()).add(pod["ip"])
    return {h: frozenset(ips) for h, ips in ready.items()}, green_pods


def _matches(labels: Mapping[str, str], selector: Mapping[str, str]) -> bool:
    return all(labels.get(k) == v for k, v in selector.items())


def _release_path(namespace: str, name: str, subresource: str | None = None) -> str:
    return namespaced_path(f"{API_GROUP}/{API_VERSION}", namespace, PLURAL, name, subresource)


def _selector_string(labels: Mapping[str, str]) -> str:
    return ",".join(f"{k}={v}" for k, v in sorted(labels.items()))


class KubeAdapter:
    def __init__(self, api: client.ApiClient, cache: WatchCache | None = None) -> None:
        self.api = api
        self.rest = KubeRest(api)
        # what the watches saw; until Kopf's indexes are attached (and in unit tests) every read is live
        self.cache = cache if cache is not None else WatchCache()
        self._pool = ThreadPoolExecutor(max_workers=8, thread_name_prefix="observe")

    # -- reads ----------------------------------------------------------------------------------

    def get_release(self, namespace: str, name: str) -> dict[str, Any] | None:
        try:
            return self.rest.get(_release_path(namespace, name))
        except ApiException as exc:
            if exc.status == 404:
                return None
            raise

    @property
    def cached(self) -> bool:
        """Whether observe() reads the watch cache (else it reads the API server)."""
        return self.cache.attached

    def observe(self, release: Release, status: Status, now: datetime.datetime,
                image: ImageCheck | None, provenance: ProvenanceCheck | None = None, *,
                rules: GovernanceRules | None = None, approvals: ApprovalCheck | None = None,
                live: bool = False) -> Observations:
        """What the lifecycle decides on: from the watch cache once attached, else (or when `live`) from
        the API server."""
        ns, t = release.namespace, release.spec.target
        green_name = observed_green(release, status)
        if self.cache.attached and not live:
            blue, green = self._cached_deployment(ns, t.deployment), self._cached_deployment(ns, green_name)
            service, preview = self._cached_service(ns, t.service), (
                self._cached_service(ns, t.preview_service) if t.preview_service else None)
            endpoints = self.cache.endpoint_ips(ns, t.service) if service else frozenset()
            preview_endpoints = self.cache.endpoint_ips(ns, preview.name) if preview else frozenset()
            pods = self._select(self.cache.pods(ns), status, service)
        else:
            blue, green, service, preview, (endpoints, preview_endpoints), pods = self._live_views(
                ns, t.deployment, green_name, t.service, t.preview_service, status)
        ips_by_hash, green_pods = _ready_ips(pods, release.uid)
        return Observations(
            now=now, blue=blue, service=service, preview_service=preview, green=green,
            endpoint_ips=endpoints, preview_endpoint_ips=preview_endpoints,
            pod_ips_by_hash=ips_by_hash, green_pod_count=green_pods, image=image, provenance=provenance,
            queue_ahead=self._queue_ahead(release) if status.phase in (Phase.VERIFYING, Phase.QUEUED) else None,
            rules=rules, approvals=approvals,
        )

    def _live_views(self, ns: str, blue_name: str, green_name: str, service_name: str, preview_name: str | None,
                    status: Status) -> tuple[DeploymentView | None, DeploymentView | None, ServiceView | None,
                                             ServiceView | None, tuple[frozenset[str], frozenset[str]], list[Entry]]:
        # The reads are independent: issued together, a reconcile waits for the slowest, not their sum.
        pool = self._pool
        blue_f = pool.submit(self._deployment, ns, blue_name)
        service_f = pool.submit(self._service, ns, service_name)
        preview_f = pool.submit(self._service, ns, preview_name) if preview_name else None
        green_f = pool.submit(self._deployment, ns, green_name)
        slices_f = pool.submit(self._endpoint_ips, ns, service_name)
        preview_slices_f = pool.submit(self._endpoint_ips, ns, preview_name) if preview_name else None
        pinned = status.blue_green.original_selector
        pods_f = pool.submit(self._pods, ns, pinned) if pinned else None
        service = service_f.result()
        app_selector = _app_selector(status, service)
        if pods_f is None and app_selector:
            pods_f = pool.submit(self._pods, ns, app_selector)
        pods = pods_f.result() if pods_f else []
        endpoints = slices_f.result() if service else frozenset()
        preview = preview_f.result() if preview_f else None
        preview_endpoints = preview_slices_f.result() if preview_slices_f and preview else frozenset()
        return blue_f.result(), green_f.result(), service, preview, (endpoints, preview_endpoints), pods

    def _select(self, pods: list[Entry], status: Status, service: ServiceView | None) -> list[Entry]:
        selector = _app_selector(status, service)
        return [p for p in pods if _matches(p["labels"], selector)] if selector else []

    def _cached_deployment(self, namespace: str, name: str) -> DeploymentView | None:
        entry = self.cache.deployment(namespace, name)
        if entry is None:
            return self._deployment(namespace, name) if self.cache.may_lag(namespace, name) else None
        sets = self.cache.replica_sets(namespace, entry["uid"])
        current = next((rs["hash"] for rs in sets if entry["revision"] and rs["revision"] == entry["revision"]), None)
        return _deployment_view(name, entry, current)

    def _cached_service(self, namespace: str, name: str) -> ServiceView | None:
        entry = self.cache.service(namespace, name)
        return None if entry is None else ServiceView(name=name, selector=dict(entry["selector"]))

    def _pods(self, namespace: str, selector: Mapping[str, str]) -> list[Entry]:
        items = self.rest.get(namespaced_path("v1", namespace, "pods"),
                              labelSelector=_selector_string(selector)).get("items", [])
        return [pod_entry(pod) for pod in items]

    def green_pods(self, release: Release) -> list[dict[str, Any]]:
        """This release's green pods as the API server lists them (for the kubernetes check)."""
        selector = _selector_string({LABEL_RELEASE_UID: release.uid})
        pods = self.rest.get(namespaced_path("v1", release.namespace, "pods"), labelSelector=selector)
        return [p for p in pods.get("items", []) if "deletionTimestamp" not in p["metadata"]]

    def _deployment(self, namespace: str, name: str) -> DeploymentView | None:
        try:
            raw = self.rest.get(namespaced_path("apps/v1", namespace, "deployments", name))
        except ApiException as exc:
            if exc.status == 404:
                return None
            raise
        entry = deployment_entry(raw)
        return _deployment_view(name, entry, self._current_hash(namespace, entry))

    def _current_hash(self, namespace: str, deployment: Entry) -> str | None:
        """The pod-template-hash of the ReplicaSet that runs the Deployment's current revision."""
        if deployment["revision"] is None:
            return None
        listed = self.rest.get(namespaced_path("apps/v1", namespace, "replicasets"),
                               labelSelector=_selector_string(deployment["selector"]))
        for rs in listed.get("items", []):
            entry = replicaset_entry(rs)
            if replicaset_owner(rs) == deployment["uid"] and entry["revision"] == deployment["revision"]:
                return str(entry["hash"]) if entry["hash"] else None
        return None

    def _service(self, namespace: str, name: str) -> ServiceView | None:
        try:
            svc = self.rest.get(namespaced_path("v1", namespace, "services", name))
        except ApiException as exc:
            if exc.status == 404:
                return None
            raise
        return ServiceView(name=name, selector=service_entry(svc)["selector"])

    def _endpoint_ips(self, namespace: str, service: str) -> frozenset[str]:
        slices = self.rest.get(namespaced_path("discovery.k8s.io/v1", namespace, "endpointslices"),
                               labelSelector=f"{LABEL_SERVICE_NAME}={service}")
        return frozenset(ip for s in slices.get("items", []) for ip in endpoint_entry(s))

    def _queue_ahead(self, release: Release) -> tuple[str, ...]:
        listed = self.rest.get(namespaced_path(f"{API_GROUP}/{API_VERSION}", release.namespace, PLURAL))
        ahead: list[tuple[datetime.datetime, str]] = []
        for item in listed.get("items", []):
            meta = item["metadata"]
            if meta["uid"] == release.uid or item.get("spec", {}).get("target", {}).get("deployment") != \
                    release.spec.target.deployment:
                continue
            phase = (item.get("status") or {}).get("phase")
            if phase is not None and Phase(phase).terminal:
                continue
            created = parse_utc_iso(meta["creationTimestamp"])
            if created is not None and (created, meta["name"]) < (release.created, release.name):
                ahead.append((created, meta["name"]))
        return tuple(name for _, name in sorted(ahead))

    # -- writes ---------------------------------------------------------------------------------

    def write_status(self, release: Release, status: Status) -> dict[str, Any]:
        """Replace the whole status; returns the object as the API server stored it."""
        # A JSON patch replacing the whole status: fields the lifecycle cleared must disappear, which a
        # merge patch would not do.
        patch = [{"op": "add", "path": "/status", "value": status.to_json()}]
        return self.rest.write("PATCH", _release_path(release.namespace, release.name, "status"), patch, JSON_PATCH)

    def mark_settled(self, namespace: str, name: str) -> None:
        """Label a release the operator has nothing left to do for (api.LABEL_SETTLED), and drop its finalizer:
        a settled release has nothing to put back, and the operator stops watching it (handlers.configure's
        server-side selector), so a finalizer left on it would hold its deletion forever."""
        for _attempt in range(3):
            current = self.get_release(namespace, name)
            if current is None:
                return
            meta = current["metadata"]
            patch = {"metadata": {"labels": {LABEL_SETTLED: "true"}, "resourceVersion": meta["resourceVersion"],
                                  "finalizers": [f for f in meta.get("finalizers") or [] if f != FINALIZER]}}
            try:
                self.rest.write("PATCH", _release_path(namespace, name), patch, MERGE_PATCH)
                return
            except ApiException as exc:
                if exc.status == 404:
                    return
                if exc.status != 409:  # 409: changed since read; read again
                    raise
        raise RuntimeError(f"{namespace}/{name} kept changing while it was being labelled settled")

    def execute(self, release: Release, action: Action) -> str:
        """Carry out one action; returns a line for the log. Safe to repeat."""
        ns = release.namespace
        if isinstance(action, SetServiceSelector):
            selector_patch = [{"op": "replace", "path": "/spec/selector", "value": dict(action.selector)}]
            self.rest.write("PATCH", namespaced_path("v1", ns, "services", action.service), selector_patch, JSON_PATCH)
            self.cache.wrote_selector(ns, action.service, action.selector)
            return f"Service {action.service} selector -> {dict(action.selector)} ({action.why})"
        if isinstance(action, CreateDeployment):
            name = action.manifest["metadata"]["name"]
            try:
                self.rest.write("POST", namespaced_path("apps/v1", ns, "deployments"), dict(action.manifest))
                self.cache.created_deployment(ns, name)
            except ApiException as exc:
                if exc.status != 409:
                    raise
                return f"Deployment {name} already exists"
            return f"created Deployment {name}"
        if isinstance(action, DeleteDeployment):
            return self._delete_own_deployment(ns, action)
        if isinstance(action, SetContainerImage):
            image_patch = {"spec": {"template": {"spec": {"containers": [{"name": action.container,
                                                                           "image": action.image}]}}}}
            self.rest.write("PATCH", namespaced_path("apps/v1", ns, "deployments", action.deployment), image_patch,
                            STRATEGIC_MERGE)
            self.cache.wrote_image(ns, action.deployment, action.container, action.image)
            return f"Deployment {action.deployment} container {action.container} image -> {action.image}"
        raise TypeError(f"unknown action {action!r}")

    def _delete_own_deployment(self, ns: str, action: DeleteDeployment) -> str:
        """Delete a Deployment only if this release created it (its label), and only the object read: its uid is
        the delete's precondition, so one deleted and re-created under the name since the read is left alone."""
        path = namespaced_path("apps/v1", ns, "deployments", action.name)
        gone = f"Deployment {action.name} already gone"
        try:
            meta = self.rest.get(path)["metadata"]
        except ApiException as exc:
            if exc.status == 404:
                return gone
            raise
        if (meta.get("labels") or {}).get(LABEL_RELEASE_UID) != action.release_uid:
            raise RuntimeError(f"refusing to delete Deployment {action.name}: not created by this release")
        options = {"apiVersion": "v1", "kind": "DeleteOptions", "propagationPolicy": "Background",
                   "preconditions": {"uid": meta["uid"]}}
        try:
            self.rest.delete(path, options)
        except ApiException as exc:
            if exc.status == 404:
                return gone
            if exc.status == 409:
                raise RuntimeError(f"refusing to delete Deployment {action.name}: it was replaced since it was read "
                                   "(another object has its name now)") from exc
            raise
        return f"deleted Deployment {action.name}"

    def post_event(self, release: Release, event: Event, now: datetime.datetime) -> None:
        message = event.message if event.actor == OPERATOR else f"{event.actor}: {event.message}"
        stamp = utc_iso(now)
        body = {
            "metadata": {"generateName": f"{release.name}.", "namespace": release.namespace},
            "involvedObject": {"apiVersion": f"{API_GROUP}/{API_VERSION}", "kind": "HotfixRelease",
                               "name": release.name, "namespace": release.namespace, "uid": release.uid},
            "reason": event.reason, "message": message[:1024], "type": event.type,
            "source": {"component": "hotfix-operator"}, "reportingComponent": "hotfix-operator",
            "reportingInstance": "hotfix-operator", "firstTimestamp": stamp, "lastTimestamp": stamp, "count": 1,
            "action": event.reason,
        }
        # In the reconcile's path, after status and actions: whoever reads the phase can then find its Event
        # (an Event is still best effort; the audit trail in status is the record).
        self._send_event(release, event.reason, body)

    def _send_event(self, release: Release, reason: str, body: dict[str, Any]) -> None:
        try:
            self.rest.write("POST", namespaced_path("v1", release.namespace, "events"), body)
        except Exception as exc:  # nothing here may break a reconcile; the audit trail has it
            log.warning("could not post Event %s for %s/%s: %s", reason, release.namespace, release.name, exc)


def _app_selector(status: Status, service: ServiceView | None) -> Mapping[str, str] | None:
    """The target's pods: the selector pinned at Deploying, else the active Service's without the hash."""
    pinned = status.blue_green.original_selector
    if pinned:
        return pinned
    return {k: v for k, v in service.selector.items() if k != POD_TEMPLATE_HASH} if service else None


def _deployment_view(name: str, entry: Entry, current_hash: str | None) -> DeploymentView:
    return DeploymentView(
        name=name, generation=entry["generation"], observed_generation=entry["observedGeneration"],
        replicas=entry["replicas"], updated_replicas=entry["updatedReplicas"],
        available_replicas=entry["availableReplicas"], current_hash=current_hash, selector=entry["selector"],
        pod_template=entry["template"], labels=entry["labels"], stuck_reason=stuck_reason(entry["conditions"]),
        revision=entry["revision"],
    )


