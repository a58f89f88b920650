"""When each cutover transition happened, seen through watches on the real API server (not kubectl
polling, and not the status's whole-second timestamps): green created, green available, the active
Service's selector on green, its EndpointSlices listing only green pods, the Deployment folded, and
when the loopback check target answered. The operator's own latency is the gap between a cause and
the operator's reaction to it. Nothing polls (bench/release_phases.py says why)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from kubernetes import client, config, watch

from release_phases import ReleasePhases

GREEN = "hotfix.dev/role=green"


@dataclass
class Timeline:
    kubeconfig: str
    namespace: str
    # first time each named moment was seen (time.monotonic())
    seen: dict[str, float] = field(default_factory=dict)
    green_ips: set[str] = field(default_factory=set)
    green_hash: str | None = None
    _stop: threading.Event = field(default_factory=threading.Event)
    _threads: list[threading.Thread] = field(default_factory=list)

    def mark(self, moment: str, at: float | None = None) -> None:
        self.seen.setdefault(moment, time.monotonic() if at is None else at)

    def __enter__(self) -> Timeline:
        api = client.ApiClient(config.new_client_from_config(config_file=self.kubeconfig).configuration)
        core, apps, discovery = client.CoreV1Api(api), client.AppsV1Api(api), client.DiscoveryV1Api(api)
        ns = self.namespace
        for name, lister, on_event in (
                ("deployments", lambda **kw: apps.list_namespaced_deployment(ns, **kw), self._deployment),
                ("services", lambda **kw: core.list_namespaced_service(ns, **kw), self._service),
                ("pods", lambda **kw: core.list_namespaced_pod(ns, label_selector=GREEN, **kw), self._pod),
                ("slices", lambda **kw: discovery.list_namespaced_endpoint_slice(
                    ns, label_selector="kubernetes.io/service-name=checkout", **kw), self._slice)):
            thread = threading.Thread(target=self._follow, args=(lister, on_event), name=f"timeline-{name}",
                                      daemon=True)
            thread.start()
            self._threads.append(thread)
        time.sleep(0.3)  # every watch is open before the caller acts
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()

    def _follow(self, lister: Callable[..., Any], on_event: Callable[[Any], None]) -> None:
        while not self._stop.is_set():
            stream: Iterator[dict[str, Any]] = watch.Watch().stream(lister, timeout_seconds=5)
            for event in stream:
                if self._stop.is_set():
                    return
                if event.get("type") != "ERROR" and isinstance(event.get("object"), dict):
                    on_event(event["object"])

    # The watches stream raw dicts: the client deserializes only when it can tell the list's type from
    # the lister's docstring, which these closures do not have.
    def _deployment(self, dep: dict[str, Any]) -> None:
        meta, spec, status = dep.get("metadata") or {}, dep.get("spec") or {}, dep.get("status") or {}
        replicas = spec.get("replicas", 1)
        if (meta.get("labels") or {}).get("hotfix.dev/role") == "green":
            self.mark("green created")
            if status.get("availableReplicas", 0) >= replicas and status.get("updatedReplicas", 0) >= replicas \
                    and status.get("observedGeneration", 0) >= meta.get("generation", 1):
                self.mark("green available")
        elif meta.get("name") == "checkout":
            containers = ((spec.get("template") or {}).get("spec") or {}).get("containers") or [{}]
            if "@sha256:" in containers[0].get("image", ""):
                self.mark("fold started")

    def _service(self, svc: dict[str, Any]) -> None:
        selector = (svc.get("spec") or {}).get("selector") or {}
        green = self.green_hash
        if (svc.get("metadata") or {}).get("name") == "checkout" and green and \
                selector.get("pod-template-hash") == green:
            self.mark("active selector on green")

    def _pod(self, pod: dict[str, Any]) -> None:
        ip = (pod.get("status") or {}).get("podIP")
        if ip:
            self.green_ips.add(ip)
        labels = (pod.get("metadata") or {}).get("labels") or {}
        if "pod-template-hash" in labels and self.green_hash is None:
            self.green_hash = labels["pod-template-hash"]

    def _slice(self, endpoint_slice: dict[str, Any]) -> None:
        ready = {a for e in endpoint_slice.get("endpoints") or [] if (e.get("conditions") or {}).get("ready")
                 for a in e.get("addresses") or []}
        if ready and self.green_ips and ready <= self.green_ips:
            self.mark("endpoints only green")

    def gap(self, cause: str, effect: str) -> float:
        return self.seen[effect] - self.seen[cause]


@dataclass
class TransitionSamples:
    """Per transition, the operator's reaction time in seconds, one sample per run."""

    approval_to_green_created: list[float] = field(default_factory=list)
    green_available_to_first_check: list[float] = field(default_factory=list)
    checks_passed_to_switch: list[float] = field(default_factory=list)
    green_available_to_switch: list[float] = field(default_factory=list)  # releases with no checks
    bake_over_to_fold: list[float] = field(default_factory=list)
    approval_to_succeeded: list[float] = field(default_factory=list)


def run_transitions(cluster: Any, runs: int, with_checks: bool, samples: TransitionSamples,
                    bench: Any) -> None:
    """`runs` hotfixes with zero bake and scale-down; instant checks (one pre-promotion http check the
    loopback target answers at once) when `with_checks`. `bench` is the bench_cutover module."""
    from tests.support.check_targets import serving

    signer = bench.LocalSigner.load_or_create(cluster.workdir / "signing" / "release.key")
    label = "bench-checks" if with_checks else "bench-nochecks"
    with serving() as target:
        checks = {"allowedHosts": [f"127.0.0.1:{target.port}"]}
        cluster.kubectl("apply", "-f", "-", stdin=bench.json.dumps(bench.bench_policy(signer, label, checks,
                                                                                  registry_host=cluster.registry_host)))
        for run in range(runs):
            ns = f"{label}-{run}"
            image = bench.prepare(cluster, signer, ns, label, f"{label}-{run}")
            target.script(f"{ns}/ok", (200, "ok"))
            pre = [{"name": "ok", "http": {"url": f"{target.base}/{ns}/ok?hash={{{{ greenPodHash }}}}"},
                    "intervalSeconds": 1}] if with_checks else []
            manifest = bench.hotfix(image, 0, 0, {"prePromotion": pre} if pre else None)
            cluster.kubectl("apply", "-n", ns, "-f", "-", stdin=bench.json.dumps(manifest), user="alice")
            with Timeline(str(cluster.kubeconfig), ns) as timeline, \
                    ReleasePhases(str(cluster.kubeconfig), ns) as phases:
                approved = bench.approve(cluster, ns)
                phase, done = phases.wait({"Succeeded", "RolledBack", "Failed"})
                deadline = time.monotonic() + 5
                while "fold started" not in timeline.seen and time.monotonic() < deadline:
                    time.sleep(0.05)
            if phase != "Succeeded":
                raise SystemExit(f"benchmark hotfix in {ns} ended {phase}")
            record(samples, timeline, approved, done, [r.at for r in target.under(f"{ns}/ok")], with_checks)


def record(samples: TransitionSamples, t: Timeline, approved: float, done: float, checks: list[float],
           with_checks: bool) -> None:
    samples.approval_to_green_created.append(t.seen["green created"] - approved)
    samples.approval_to_succeeded.append(done - approved)
    samples.bake_over_to_fold.append(t.gap("endpoints only green", "fold started"))
    if with_checks:
        samples.green_available_to_first_check.append(checks[0] - t.seen["green available"])
        samples.checks_passed_to_switch.append(t.seen["active selector on green"] - checks[-1])
    else:
        samples.green_available_to_switch.append(t.gap("green available", "active selector on green"))
