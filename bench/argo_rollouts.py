"""Argo Rollouts' blue-green promotion on the real local control plane, as a baseline for the operator's cutover.

The controller (rollouts-controller, pinned ARGO_ROLLOUTS_VERSION in hack/versions.env) is built into the cache
on first use by `hack/build-binaries.sh argo-rollouts`, which also copies the Rollout CRDs from the same module.
Each run: a namespace with the quickstart's app as a blue-green Rollout (activeService + previewService,
autoPromotionEnabled false, 3 replicas), a new image, and, once the new ReplicaSet is fully available and the
rollout is paused awaiting promotion (and quiet for 0.5 s, see Run.settled), the promotion that
`kubectl argo rollouts promote` sends (a merge patch of the status subresource clearing status.pauseConditions).
Measured: from that patch's return to the moment a watch on
the active Service, opened before the patch, sees its `rollouts-pod-template-hash` selector turn to the new hash.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import queue
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from kubernetes import client, config, watch

from localcluster.cluster import LocalCluster, free_port
from localcluster.toolchain import HACK, pinned_versions

GROUP, API_VERSION, PLURAL = "argoproj.io", "v1alpha1", "rollouts"
HASH = "rollouts-pod-template-hash"
NAME, PREVIEW = "checkout", "checkout-preview"
IMAGE = "registry.example.com/shop/checkout"
REPLICAS = 3
Check = Callable[[], bool]


def version() -> str:
    return pinned_versions()["ARGO_ROLLOUTS_VERSION"]


def build() -> Path:
    """The cache's bin directory holding rollouts-controller (built when missing); its CRDs are in ../crds."""
    out = subprocess.run(["bash", str(HACK / "build-binaries.sh"), "argo-rollouts"], check=True,
                         capture_output=True, text=True).stdout
    return Path(out.strip())


def install_crds(cluster: LocalCluster, api: client.ApiClient, crds: Path) -> None:
    """Applies every Argo Rollouts CRD (the controller watches them all) and waits until each is served."""
    applied = cluster.kubectl("apply", "--server-side", "-o", "name", "-f", str(crds)).stdout.split()
    names = [name.rpartition("/")[2] for name in applied]
    extensions = client.ApiextensionsV1Api(api)

    def established() -> bool:
        statuses = [extensions.read_custom_resource_definition(name).status for name in names]
        return all(status is not None and any(c.type == "Established" and c.status == "True"
                                              for c in status.conditions or []) for status in statuses)

    wait("Argo Rollouts CRDs established", established, timeout=30)


def _die_with_parent() -> None:
    """Between fork and exec: SIGKILL the controller when the benchmark dies, as the cluster's own processes."""
    ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG


@contextlib.contextmanager
def controller(cluster: LocalCluster, binary: Path) -> Iterator[subprocess.Popen[bytes]]:
    """rollouts-controller as admin over every namespace (each run has its own), one instance, no leader
    election, metrics and healthz on free ports; its log is logs/argo-rollouts.log in the cluster's workdir."""
    argv = [str(binary), "--kubeconfig", str(cluster.kubeconfig), "--leader-elect=false",
            "--metricsport", str(free_port()), "--healthzPort", str(free_port())]
    with (cluster.workdir / "logs" / "argo-rollouts.log").open("ab") as log:
        proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                preexec_fn=_die_with_parent, env={**os.environ, "POD_NAMESPACE": "default"})
    try:
        yield proc
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def rollout_manifest(image: str) -> dict[str, Any]:
    """The Deployment of examples/quickstart/app.yaml as a blue-green Rollout."""
    template = {"metadata": {"labels": {"app": NAME, "tier": "web"}},
                "spec": {"containers": [{"name": "app", "image": image, "ports": [{"containerPort": 8080}],
                                         "readinessProbe": {"httpGet": {"path": "/healthz", "port": 8080}}}]}}
    strategy = {"blueGreen": {"activeService": NAME, "previewService": PREVIEW, "autoPromotionEnabled": False}}
    return {"apiVersion": f"{GROUP}/{API_VERSION}", "kind": "Rollout", "metadata": {"name": NAME},
            "spec": {"replicas": REPLICAS, "selector": {"matchLabels": {"app": NAME}}, "template": template,
                     "strategy": strategy}}


def service(name: str) -> client.V1Service:
    return client.V1Service(metadata=client.V1ObjectMeta(name=name), spec=client.V1ServiceSpec(
        selector={"app": NAME}, ports=[client.V1ServicePort(port=80, target_port=8080)]))


class Run:
    """One namespace with the Rollout and its two Services, driven through the API."""

    def __init__(self, api: client.ApiClient, ns: str) -> None:
        self.api, self.ns = api, ns
        self.core, self.apps, self.crd = client.CoreV1Api(api), client.AppsV1Api(api), client.CustomObjectsApi(api)

    def create(self) -> None:
        self.core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=self.ns)))
        wait(f"default service account in {self.ns}", self._has_default_sa)
        for name in (NAME, PREVIEW):
            self.core.create_namespaced_service(self.ns, service(name))
        manifest = rollout_manifest(f"{IMAGE}:4.1.1")
        self.crd.create_namespaced_custom_object(GROUP, API_VERSION, self.ns, PLURAL, manifest)

    def _has_default_sa(self) -> bool:
        accounts = self.core.list_namespaced_service_account(self.ns).items
        return any(sa.metadata is not None and sa.metadata.name == "default" for sa in accounts)

    def rollout(self) -> dict[str, Any]:
        found = self.crd.get_namespaced_custom_object(GROUP, API_VERSION, self.ns, PLURAL, NAME)
        return found if isinstance(found, dict) else {}

    def selector_hash(self, name: str) -> str | None:
        spec = self.core.read_namespaced_service(name, self.ns).spec
        return (spec.selector or {}).get(HASH) if spec is not None else None

    def healthy(self) -> bool:
        status = self.rollout().get("status", {})
        stable = status.get("stableRS")
        return status.get("phase") == "Healthy" and stable is not None and self.selector_hash(NAME) == stable

    def set_image(self, image: str) -> None:
        patch = {"spec": {"template": {"spec": {"containers": [{"name": "app", "image": image}]}}}}
        self.crd.patch_namespaced_custom_object(GROUP, API_VERSION, self.ns, PLURAL, NAME, patch,
                                                _content_type="application/merge-patch+json")

    def awaiting_promotion(self) -> str | None:
        """The new pod hash once its ReplicaSet is fully available, the preview Service points at it and the
        rollout is paused for promotion (status.pauseConditions BlueGreenPause); None before that."""
        status = self.rollout().get("status", {})
        new, stable = status.get("currentPodHash"), status.get("stableRS")
        paused = any(c.get("reason") == "BlueGreenPause" for c in status.get("pauseConditions") or []) and any(
            c.get("type") == "Paused" and c.get("status") == "True" for c in status.get("conditions") or [])
        if not paused or new is None or new == stable or self.selector_hash(PREVIEW) != new:
            return None
        sets = self.apps.list_namespaced_replica_set(self.ns, label_selector=f"{HASH}={new}").items
        available = sets[0].status.available_replicas if sets and sets[0].status is not None else None
        return new if available == REPLICAS else None

    def settled(self, quiet: float = 0.5) -> None:
        """Waits until the rollout has not changed for `quiet` seconds. Promoting inside the controller's own burst
        of writes that follows the pause can be lost: its write-back of a patch response into its informer cache
        may overwrite the promote's newer watch event, and it then waits for a resync (seen with v1.8.5 here)."""
        last, since = "", time.monotonic()
        while time.monotonic() - since < quiet:
            version = self.rollout()["metadata"]["resourceVersion"]
            if version != last:
                last, since = version, time.monotonic()
            time.sleep(0.05)

    def promote(self) -> None:
        """What `kubectl argo rollouts promote NAME` sends to a blue-green rollout paused before promotion
        (pkg/kubectl-argo-rollouts/cmd/promote): a merge patch of the status subresource clearing the pause
        conditions, and a spec patch unpausing it only if spec.paused is set."""
        rollout = self.rollout()
        if rollout.get("status", {}).get("pauseConditions"):
            self.crd.patch_namespaced_custom_object_status(GROUP, API_VERSION, self.ns, PLURAL, NAME,
                                                           {"status": {"pauseConditions": None}},
                                                           _content_type="application/merge-patch+json")
        if rollout["spec"].get("paused"):
            self.crd.patch_namespaced_custom_object(GROUP, API_VERSION, self.ns, PLURAL, NAME,
                                                    {"spec": {"paused": False}},
                                                    _content_type="application/merge-patch+json")

    def delete(self) -> None:
        """Deletes the namespace and waits until it is gone, so its teardown does not overlap the next run."""
        self.core.delete_namespace(self.ns)
        wait(f"{self.ns} deleted", self._gone)

    def _gone(self) -> bool:
        return not any(ns.metadata is not None and ns.metadata.name == self.ns
                       for ns in self.core.list_namespace().items)


def wait(what: str, check: Check, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.05)
    raise TimeoutError(f"timed out waiting for {what}")


def wait_for(what: str, probe: Callable[[], str | None], timeout: float = 120) -> str:
    found: list[str] = []

    def check() -> bool:
        value = probe()
        if value is not None:
            found.append(value)
        return value is not None

    wait(what, check, timeout)
    return found[0]


class SelectorWatch:
    """A watch on one Service, open (its initial ADDED event seen) before `start` returns; `switched` gives the
    monotonic time at which an event showing the selector's pod hash equal to `target` arrived."""

    def __init__(self, api: client.ApiClient, ns: str, name: str, target: str) -> None:
        self.core, self.ns, self.name, self.target = client.CoreV1Api(api), ns, name, target
        self.events: queue.Queue[tuple[str, float]] = queue.Queue()
        self.watch = watch.Watch()  # type: ignore[no-untyped-call]
        self.thread = threading.Thread(target=self._run, daemon=True)

    def start(self) -> SelectorWatch:
        self.thread.start()
        kind, _ = self.events.get(timeout=30)
        if kind != "open":
            raise RuntimeError(f"watch on {self.ns}/{self.name} did not open: {kind}")
        return self

    def _run(self) -> None:
        try:
            stream = self.watch.stream(  # type: ignore[no-untyped-call]
                self.core.list_namespaced_service, self.ns, deserialize=False,
                field_selector=f"metadata.name={self.name}", timeout_seconds=120)
            for event in stream:
                seen = time.monotonic()
                selector = event["object"].get("spec", {}).get("selector") or {}
                if event["type"] == "ADDED":
                    self.events.put(("open", seen))
                if selector.get(HASH) == self.target:
                    self.events.put(("switched", seen))
                    return
            self.events.put(("watch ended before the switch", time.monotonic()))
        except Exception as error:  # reported to the waiting thread
            self.events.put((f"error: {error}", time.monotonic()))
        finally:
            self.watch.stop()  # type: ignore[no-untyped-call]

    def switched(self, timeout: float = 60) -> float:
        try:
            kind, at = self.events.get(timeout=timeout)
        except queue.Empty:
            raise TimeoutError(f"active Service {self.ns}/{self.name} not switched after {timeout:.0f}s") from None
        if kind != "switched":
            raise RuntimeError(f"watch on {self.ns}/{self.name}: {kind}")
        return at


def promote_to_switch(api: client.ApiClient, ns: str) -> float:
    """One run: returns the seconds from the promote patch's return to the watch seeing the active Service
    switched to the new ReplicaSet's pods."""
    run = Run(api, ns)
    run.create()
    wait(f"{ns} rollout healthy", run.healthy)
    run.set_image(f"{IMAGE}:4.1.2")
    new = wait_for(f"{ns} rollout paused awaiting promotion", run.awaiting_promotion)
    run.settled()
    active = SelectorWatch(api, ns, NAME, new).start()
    run.promote()
    promoted = time.monotonic()
    try:
        switched = active.switched()
    except (TimeoutError, RuntimeError) as error:
        status = {k: v for k, v in run.rollout().get("status", {}).items() if k != "conditions"}
        raise RuntimeError(f"{error}; active selector {run.selector_hash(NAME)}, new {new}, status {status}") from None
    run.delete()
    return switched - promoted


def measure_promote_to_switch(cluster: LocalCluster, runs: int) -> list[float]:
    """Installs the Rollout CRDs, runs rollouts-controller against the cluster and times `runs` promotions."""
    bin_dir = build()
    api = config.new_client_from_config(config_file=str(cluster.kubeconfig))  # type: ignore[no-untyped-call]
    install_crds(cluster, api, bin_dir.parent / "crds")
    with controller(cluster, bin_dir / "rollouts-controller") as proc:
        durations = []
        for run in range(runs):
            if proc.poll() is not None:
                raise RuntimeError(f"rollouts-controller exited with {proc.returncode}")
            durations.append(promote_to_switch(api, f"argo-bench-{run}"))
    return durations
