"""What production traffic would reach while a test injects faults, sampled from the real API server.

A background thread reads, many times a second, the active Service's EndpointSlices (the ready
addresses kube-proxy would route to), its selector, the HotfixRelease's phase and whether a green
Deployment exists. While the API server itself is down a sample records only that it could not look.
"""

from __future__ import annotations

import itertools
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any

from kubernetes import client, config

ROLE_LABEL = "hotfix.dev/role"


@dataclass(frozen=True)
class Sample:
    at: float  # time.monotonic()
    ok: bool  # the API server answered every read
    ready: frozenset[str] = frozenset()
    selector: tuple[tuple[str, str], ...] = ()
    phase: str | None = None
    green_exists: bool = False


@dataclass
class EndpointSampler:
    kubeconfig: Path
    namespace: str
    service: str
    release: str
    hz: float = 20.0
    samples: list[Sample] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def __enter__(self) -> EndpointSampler:
        configuration = client.Configuration()
        config.load_kube_config(config_file=str(self.kubeconfig), client_configuration=configuration)
        configuration.retries = False  # a refused connection is an unobserved instant, not something to retry
        api = client.ApiClient(configuration)
        self._thread = threading.Thread(target=self._run, args=(api,), name="endpoint-sampler", daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *_: type[BaseException] | BaseException | TracebackType | None) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)

    def _run(self, api: client.ApiClient) -> None:
        discovery, core = client.DiscoveryV1Api(api), client.CoreV1Api(api)
        apps, custom = client.AppsV1Api(api), client.CustomObjectsApi(api)
        period = 1.0 / self.hz
        while not self._stop.is_set():
            started = time.monotonic()
            self.samples.append(self._sample(discovery, core, apps, custom, started))
            self._stop.wait(max(0.0, period - (time.monotonic() - started)))

    def _sample(self, discovery: client.DiscoveryV1Api, core: client.CoreV1Api, apps: client.AppsV1Api,
                custom: client.CustomObjectsApi, at: float) -> Sample:
        timeout = 0.5
        try:
            slices = discovery.list_namespaced_endpoint_slice(
                self.namespace, label_selector=f"kubernetes.io/service-name={self.service}", _request_timeout=timeout)
            service = core.read_namespaced_service(self.service, self.namespace, _request_timeout=timeout)
            release: dict[str, Any] = custom.get_namespaced_custom_object(
                "hotfix.dev", "v1alpha1", self.namespace, "hotfixreleases", self.release, _request_timeout=timeout)
            deployments = apps.list_namespaced_deployment(self.namespace, label_selector=f"{ROLE_LABEL}=green",
                                                          _request_timeout=timeout)
        except Exception:  # the API server is restarting, or a read timed out: this instant is unobserved
            return Sample(at=at, ok=False)
        ready: set[str] = set()
        for endpoint_slice in slices.items:
            for endpoint in endpoint_slice.endpoints or []:
                if not endpoint.conditions or endpoint.conditions.ready is not False:
                    ready.update(endpoint.addresses or [])
        return Sample(at=at, ok=True, ready=frozenset(ready),
                      selector=tuple(sorted((service.spec.selector or {}).items())),
                      phase=(release.get("status") or {}).get("phase"), green_exists=bool(deployments.items))

    # -- what the samples say -----------------------------------------------------------------------

    @property
    def observed(self) -> list[Sample]:
        return [s for s in self.samples if s.ok]

    def rate(self) -> float:
        """Observed samples per second over the time the API server answered."""
        seen = self.observed
        if len(seen) < 2:
            return 0.0
        gaps = [b.at - a.at for a, b in itertools.pairwise(seen) if b.at - a.at < 1.0]
        return len(gaps) / sum(gaps) if gaps else 0.0

    def dark(self) -> list[Sample]:
        """Samples in which the active Service had no ready endpoint at all."""
        return [s for s in self.observed if not s.ready]

    def first(self, predicate: Any) -> Sample | None:
        return next((s for s in self.observed if predicate(s)), None)

    def assert_never_dark(self, min_hz: float = 10.0) -> None:
        assert len(self.observed) >= 20, f"too few samples: {len(self.observed)}"
        assert self.rate() >= min_hz, f"sampled at {self.rate():.1f} Hz, below {min_hz} Hz"
        dark = self.dark()
        assert not dark, f"{len(dark)} of {len(self.observed)} samples had zero ready endpoints; first: {dark[0]}"

    def summary(self) -> str:
        return (f"{len(self.observed)} samples at {self.rate():.1f} Hz, {len(self.samples) - len(self.observed)} "
                f"unobserved (API server away), {len(self.dark())} with zero ready endpoints")
