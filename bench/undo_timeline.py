"""How fast an undo puts the previous version back: from the moment `spec.undo` is sent to the moment the
active Service's EndpointSlices list only pods running the previous image, seen through watches on the
real API server (not kubectl polling, and not the status's whole-second timestamps). Along the way: the
helper Deployment created, available, and the active Service's selector on it, so the total splits into
the operator's reactions and the controllers' work. Instant checks: one pre-promotion http check the
loopback target answers at once, run again against the previous version; bake and scale-down 0."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from kubernetes import client, config, watch

from release_phases import ReleasePhases

PREVIOUS = "previous"  # the helper's hotfix.dev/role
NAME = "hf"


@dataclass
class UndoTimeline:
    kubeconfig: str
    namespace: str
    previous_image: str
    # first time each named moment was seen (time.monotonic())
    seen: dict[str, float] = field(default_factory=dict)
    helper_hash: str | None = None
    selector: dict[str, str] = field(default_factory=dict)  # the active Service's, as last seen
    # pod name -> (ip, image) for the pods that exist now; ready addresses per EndpointSlice
    pods: dict[str, tuple[str, str]] = field(default_factory=dict)
    slices: dict[str, set[str]] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _stop: threading.Event = field(default_factory=threading.Event)

    def mark(self, moment: str) -> None:
        self.seen.setdefault(moment, time.monotonic())

    def __enter__(self) -> UndoTimeline:
        api = client.ApiClient(config.new_client_from_config(config_file=self.kubeconfig).configuration)
        core, apps, discovery = client.CoreV1Api(api), client.AppsV1Api(api), client.DiscoveryV1Api(api)
        ns = self.namespace
        for name, lister, on_event, reset in (
                ("deployments", lambda **kw: apps.list_namespaced_deployment(ns, **kw), self._deployment, None),
                ("services", lambda **kw: core.list_namespaced_service(ns, **kw), self._service, None),
                ("pods", lambda **kw: core.list_namespaced_pod(ns, **kw), self._pod, self.pods.clear),
                ("slices", lambda **kw: discovery.list_namespaced_endpoint_slice(
                    ns, label_selector="kubernetes.io/service-name=checkout", **kw), self._slice, self.slices.clear)):
            threading.Thread(target=self._follow, args=(lister, on_event, reset), name=f"undo-timeline-{name}",
                             daemon=True).start()
        time.sleep(0.3)  # every watch is open before the caller acts
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()

    def _follow(self, lister: Callable[..., Any], on_event: Callable[[str, dict[str, Any]], None],
                reset: Callable[[], None] | None) -> None:
        """Streams of at most 10 s (so a finished run's watches end soon); each new stream starts from a
        fresh list, which replaces what the last one knew (a DELETED event between two may be missed)."""
        while not self._stop.is_set():
            try:
                first = True
                for event in watch.Watch().stream(lister, timeout_seconds=10):
                    if self._stop.is_set():
                        return
                    if event.get("type") == "ERROR" or not isinstance(event.get("object"), dict):
                        continue
                    with self._lock:
                        if first and reset is not None:
                            reset()
                        first = False
                        on_event(str(event["type"]), event["object"])
            except Exception:  # the API server went away, or a stream broke: list again
                if self._stop.is_set():
                    return
                time.sleep(0.1)

    # The watches stream raw dicts (the listers are closures the client cannot type).
    def _deployment(self, _: str, dep: dict[str, Any]) -> None:
        meta, spec, status = dep.get("metadata") or {}, dep.get("spec") or {}, dep.get("status") or {}
        if (meta.get("labels") or {}).get("hotfix.dev/role") != PREVIOUS:
            return
        self.mark("helper created")
        replicas = spec.get("replicas", 1)
        if status.get("availableReplicas", 0) >= replicas and status.get("updatedReplicas", 0) >= replicas \
                and status.get("observedGeneration", 0) >= meta.get("generation", 1):
            self.mark("helper available")

    def _service(self, _: str, svc: dict[str, Any]) -> None:
        if (svc.get("metadata") or {}).get("name") == "checkout":
            self.selector = dict((svc.get("spec") or {}).get("selector") or {})
            self._on_helper()

    def _on_helper(self) -> None:
        if self.helper_hash and self.selector.get("pod-template-hash") == self.helper_hash:
            self.mark("active selector on helper")

    def _pod(self, kind: str, pod: dict[str, Any]) -> None:
        meta = pod.get("metadata") or {}
        name, labels = str(meta.get("name")), meta.get("labels") or {}
        if kind == "DELETED":
            self.pods.pop(name, None)
        else:
            ip = (pod.get("status") or {}).get("podIP")
            image = (((pod.get("spec") or {}).get("containers")) or [{}])[0].get("image", "")
            if ip:
                self.pods[name] = (ip, image)
        if labels.get("hotfix.dev/role") == PREVIOUS and self.helper_hash is None:
            self.helper_hash = labels.get("pod-template-hash")
            self._on_helper()
        self._judge()

    def _slice(self, kind: str, endpoint_slice: dict[str, Any]) -> None:
        name = str((endpoint_slice.get("metadata") or {}).get("name"))
        if kind == "DELETED":
            self.slices.pop(name, None)
        else:
            self.slices[name] = {a for e in endpoint_slice.get("endpoints") or []
                                 if (e.get("conditions") or {}).get("ready") for a in e.get("addresses") or []}
        self._judge()

    def _judge(self) -> None:
        """Traffic is on the previous version once every ready address is a pod running the previous image."""
        ready = set().union(*self.slices.values()) if self.slices else set()
        previous = {ip for ip, image in self.pods.values() if image == self.previous_image}
        if ready and ready <= previous:
            self.mark("endpoints only previous")


@dataclass
class UndoSamples:
    """One sample per run, in seconds."""

    undo_to_previous: list[float] = field(default_factory=list)  # the headline: spec.undo -> traffic on previous
    undo_to_helper_created: list[float] = field(default_factory=list)
    helper_available_to_selector: list[float] = field(default_factory=list)
    selector_to_endpoints: list[float] = field(default_factory=list)
    undo_to_undone: list[float] = field(default_factory=list)
    load_average: list[tuple[float, float, float]] = field(default_factory=list)


def set_undo(cluster: Any, ns: str) -> float:
    """alice sets spec.undo through the API (no kubectl start-up in the measurement); the time it was sent."""
    api = config.new_client_from_config(config_file=str(cluster.user_kubeconfig("alice")))
    custom = client.CustomObjectsApi(api)
    patch = {"spec": {"undo": {"by": "alice", "reason": "benchmark: the previous version comes back"}}}
    sent = time.monotonic()
    custom.patch_namespaced_custom_object("hotfix.dev", "v1alpha1", ns, "hotfixreleases", NAME, patch,
                                          _content_type="application/merge-patch+json")
    return sent


def run_undos(cluster: Any, runs: int, samples: UndoSamples, bench: Any) -> None:
    """`runs` hotfixes with an instant pre-promotion check, each taken to Succeeded and then undone."""
    from tests.support.check_targets import serving

    signer = bench.LocalSigner.load_or_create(cluster.workdir / "signing" / "release.key")
    label = "bench-undo"
    with serving() as target:
        checks = {"allowedHosts": [f"127.0.0.1:{target.port}"]}
        cluster.kubectl("apply", "-f", "-", stdin=bench.json.dumps(bench.bench_policy(
            signer, label, checks, registry_host=cluster.registry_host)))
        for run in range(runs):
            ns = f"{label}-{run}"
            image = bench.prepare(cluster, signer, ns, label, f"{label}-{run}")
            previous = cluster.kubectl("get", "deploy", "checkout", "-n", ns, "-o",
                                       "jsonpath={.spec.template.spec.containers[0].image}").stdout
            target.script(f"{ns}/ok", (200, "ok"))
            pre = [{"name": "ok", "http": {"url": f"{target.base}/{ns}/ok?hash={{{{ greenPodHash }}}}"},
                    "intervalSeconds": 1}]
            manifest = bench.hotfix(image, 0, 0, {"prePromotion": pre})
            cluster.kubectl("apply", "-n", ns, "-f", "-", stdin=bench.json.dumps(manifest), user="alice")
            bench.approve(cluster, ns)
            if (phase := bench.wait_phase(cluster, ns, {"Succeeded", "RolledBack", "Failed"})) != "Succeeded":
                raise SystemExit(f"benchmark hotfix in {ns} ended {phase}")
            with UndoTimeline(str(cluster.kubeconfig), ns, previous) as timeline, \
                    ReleasePhases(str(cluster.kubeconfig), ns) as phases:
                sent = set_undo(cluster, ns)
                phase, done = phases.wait({"Undone", "UndoFailed"})
            if phase != "Undone":
                raise SystemExit(f"benchmark undo in {ns} ended {phase}")
            record(samples, timeline, sent, done)
            samples.load_average.append(os.getloadavg())


def record(samples: UndoSamples, t: UndoTimeline, sent: float, done: float) -> None:
    seen = t.seen
    samples.undo_to_previous.append(seen["endpoints only previous"] - sent)
    samples.undo_to_helper_created.append(seen["helper created"] - sent)
    samples.helper_available_to_selector.append(seen["active selector on helper"] - seen["helper available"])
    samples.selector_to_endpoints.append(seen["endpoints only previous"] - seen["active selector on helper"])
    samples.undo_to_undone.append(done - sent)
